// The workspace in real headless Chromium (Debian's `chromium` driven by
// `playwright-core`), every page scanned with axe-core for WCAG 2.1 A/AA:
// no serious or critical violation is allowed. Screenshots of each page
// go to $CIVITAS_SCREENSHOTS (default: a temporary folder) for review.
//
//   CIVITAS_BIN=target/debug/civitas node --test tests/browser/
//
// The server runs without a model (these pages need none) on a fresh
// data folder; an administrator is created with `civitas admin create`.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import AxeBuilder from '@axe-core/playwright';
import { chromium } from 'playwright-core';

const BIN = process.env.CIVITAS_BIN;
const CHROMIUM = process.env.CIVITAS_CHROMIUM || '/usr/bin/chromium';
const SCREENSHOTS = process.env.CIVITAS_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'civitas-screens-'));
const EMAIL = 'chief@browser.example.gov';
const PASSWORD = 'Vélo-rouge-sous-la-pluie';

let server;
let browser;
let base;

function freePort() {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

before(async () => {
  assert.ok(BIN, 'CIVITAS_BIN must name the civitas binary');
  const data = mkdtempSync(join(tmpdir(), 'civitas-browser-'));
  const env = {
    PATH: process.env.PATH,
    CIVITAS_DATA_DIR: data,
    CIVITAS_BOOTSTRAP_KEY: 'sk-browser-test-key',
    CIVITAS__MODELS__CHAT: '',
    CIVITAS__MODELS__EMBEDDING: '',
    // Plain HTTP on 127.0.0.1 in the test.
    CIVITAS__AUTH__SECURE_COOKIES: 'false',
  };
  const created = spawnSync(BIN, ['admin', 'create', '--email', EMAIL, '--name', 'Jeanne Chief', '--password-stdin'], {
    env,
    input: `${PASSWORD}\n`,
  });
  assert.equal(created.status, 0, String(created.stderr));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['serve', '--no-pull', '--listen', `127.0.0.1:${port}`], { env, stdio: 'ignore' });
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Playwright gives each launch a fresh, temporary profile.
    ],
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.kill();
});

/** Scans the page: no serious or critical WCAG 2.1 A/AA violation. */
async function accessible(page, name) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`),
    [],
    `${name}: accessibility violations`,
  );
}

test('sign in, see the workspace, switch to French, sign out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const blocked = [];
  page.on('console', (message) => {
    if (message.type() === 'error') blocked.push(message.text());
  });
  await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, '/sign-in');
  await accessible(page, 'sign-in');

  // The keyboard alone reaches the skip link first.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('href')), '#main-content');

  await page.getByLabel('E-mail address').fill(EMAIL);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /not right/);
  await accessible(page, 'sign-in-error');

  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your workspace' }).waitFor();
  assert.match(await page.locator('main').innerText(), /Jeanne Chief/);
  await accessible(page, 'workspace');

  // Settings: create an API key (shown once), then revoke it.
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
  await accessible(page, 'settings');
  await page.getByRole('button', { name: 'Create the key' }).click();
  assert.match(await page.getByRole('alert').innerText(), /name/);
  await accessible(page, 'settings-error');
  await page.getByLabel('Name of the new key').fill('browser notebook');
  await page.getByRole('button', { name: 'Create the key' }).click();
  const secret = await page.locator('.civitas-secret').innerText();
  assert.match(secret, /^civ_[A-Za-z0-9_-]{43}$/);
  await accessible(page, 'settings-key-created');
  const me = await fetch(`${base}/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(me.status, 200);
  await page.getByRole('button', { name: 'Revoke browser notebook' }).click();
  await page.getByRole('cell', { name: 'revoked' }).waitFor();
  const refused = await fetch(`${base}/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  assert.equal(refused.status, 401);
  await page.getByRole('link', { name: 'Your workspace' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your workspace' }).waitFor();

  await page.getByRole('link', { name: 'Français' }).click();
  await page.getByRole('heading', { level: 1, name: 'Votre espace de travail' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
  await accessible(page, 'workspace-fr');

  await page.getByRole('button', { name: 'Se déconnecter' }).click();
  await page.getByRole('heading', { level: 1, name: 'Connexion' }).waitFor();
  await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, '/sign-in', 'signed out for good');
  // The Content-Security-Policy blocked nothing the pages need.
  assert.deepEqual(blocked.filter((text) => text.includes('Content Security Policy')), []);
  await context.close();
});
