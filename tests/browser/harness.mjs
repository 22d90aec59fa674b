// What the browser tests and the page-weight benchmark share: a real
// `civitas serve` on a fresh data folder with the tiny local model, an
// administrator made with `civitas admin create`, and Debian's Chromium.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';

export const MODEL = 'smollm2-135m-instruct';
export const ADMIN_EMAIL = 'chief@browser.example.gov';
export const PASSWORD = 'Vélo-rouge-sous-la-pluie';

function freePort() {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts Civitas; resolves to `{ base, stop }` once it is ready. */
export async function startCivitas() {
  const bin = process.env.CIVITAS_BIN;
  const models = process.env.CIVITAS_TEST_MODELS_DIR;
  assert.ok(bin, 'CIVITAS_BIN must name the civitas binary');
  assert.ok(models, 'CIVITAS_TEST_MODELS_DIR must name the folder of test models');
  const env = {
    PATH: process.env.PATH,
    CIVITAS_DATA_DIR: mkdtempSync(join(tmpdir(), 'civitas-browser-')),
    CIVITAS_BOOTSTRAP_KEY: 'sk-browser-test-key',
    CIVITAS__MODELS__DIR: models,
    CIVITAS__MODELS__CHAT: MODEL,
    CIVITAS__MODELS__EMBEDDING: '',
    CIVITAS__MODELS__SLOTS: '2',
    CIVITAS__MODELS__CONTEXT_LENGTH: '2048',
    // One rambling answer of the tiny model must not fill a slot's whole
    // context: later turns of the same conversation still fit.
    CIVITAS__MODELS__MAX_OUTPUT_TOKENS: '400',
    // Plain HTTP on 127.0.0.1 in the tests.
    CIVITAS__AUTH__SECURE_COOKIES: 'false',
    // One administrator here: break-glass access opens without a second.
    CIVITAS__AUDIT__BREAK_GLASS_SECOND_APPROVER: 'false',
  };
  const created = spawnSync(bin, ['admin', 'create', '--email', ADMIN_EMAIL, '--name', 'Jeanne Chief', '--password-stdin'], {
    env,
    input: `${PASSWORD}\n`,
  });
  assert.equal(created.status, 0, String(created.stderr));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(bin, ['serve', '--no-pull', '--listen', `127.0.0.1:${port}`], { env, stdio: 'ignore' });
  for (let i = 0; i < 300; i += 1) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { base, stop: () => server.kill() };
}

/** Debian's Chromium, headless, with a fresh temporary profile. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CIVITAS_CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Signs in through the form and accepts the rules of behaviour if asked. */
export async function signIn(page, base, email) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  if (new URL(page.url()).pathname === '/rules') {
    await page.getByText('I have read these rules and I will follow them.').click();
    await page.getByRole('button', { name: 'Accept and continue' }).click();
  }
  await page.getByRole('heading', { level: 1, name: 'New conversation' }).waitFor();
}
