// The workspace in real headless Chromium (Debian's `chromium` driven by
// `playwright-core`), every page scanned with axe-core for WCAG 2.1 A/AA:
// no serious or critical violation is allowed. Screenshots of each page
// go to $CIVITAS_SCREENSHOTS (default: a temporary folder) for review.
//
//   CIVITAS_BIN=target/debug/civitas CIVITAS_TEST_MODELS_DIR=... node --test tests/browser/
//
// The server runs the tiny local model (SmolLM2-135M) from the test models
// folder on a fresh data folder; an administrator is created with
// `civitas admin create`, everyone else through the administration pages.

import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import AxeBuilder from '@axe-core/playwright';

import { ADMIN_EMAIL as EMAIL, MODEL, PASSWORD, launchChromium, signIn as signInAt, startCivitas } from './harness.mjs';

const SCREENSHOTS = process.env.CIVITAS_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'civitas-screens-'));
const MEMBER = 'clerk@browser.example.gov';

let civitas;
let browser;
let base;

before(async () => {
  civitas = await startCivitas();
  base = civitas.base;
  browser = await launchChromium();
  mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  civitas?.stop();
});

/** Scans the page: no serious or critical WCAG 2.1 A/AA violation. */
async function accessible(page, name) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.length}) ${v.nodes.map((n) => n.target).join(' ')}`),
    [],
    `${name}: accessibility violations`,
  );
}

/** A fresh browser context whose Content-Security-Policy reports are kept. */
async function open() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const blocked = [];
  page.on('console', (message) => {
    if (message.type() === 'error') blocked.push(message.text());
  });
  return { context, page, blocked };
}

/** Signs in through the form and accepts the rules of behaviour if asked. */
function signIn(page, email) {
  return signInAt(page, base, email);
}

function noCspViolation(blocked) {
  assert.deepEqual(blocked.filter((text) => text.includes('Content Security Policy')), []);
}

test('sign in, accept the rules, keys in settings, French, sign out', async () => {
  const { context, page, blocked } = await open();
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
  await page.getByRole('heading', { level: 1, name: 'Rules of behaviour' }).waitFor();
  await accessible(page, 'rules-of-behaviour');
  await page.getByText('I have read these rules and I will follow them.').click();
  await page.getByRole('button', { name: 'Accept and continue' }).click();
  await page.getByRole('heading', { level: 1, name: 'New conversation' }).waitFor();
  assert.match(await page.locator('header').innerText(), /Jeanne Chief/);
  await accessible(page, 'chat-new');

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

  await page.getByRole('link', { name: 'Chat', exact: true }).click();
  await page.getByRole('link', { name: 'Français' }).click();
  await page.getByRole('heading', { level: 1, name: 'Nouvelle conversation' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
  await accessible(page, 'chat-new-fr');
  await page.getByRole('link', { name: 'English' }).click();
  await page.getByRole('heading', { level: 1, name: 'New conversation' }).waitFor();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
  await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, '/sign-in', 'signed out for good');
  noCspViolation(blocked);
  await context.close();
});

test('chat: the answer streams, a stream stops, rename, search, export, feedback', async () => {
  const { context, page, blocked } = await open();
  await signIn(page, EMAIL);

  // A new conversation at the CUI level, sent with the keyboard alone.
  await page.getByLabel('Model').selectOption(MODEL);
  await page.getByRole('combobox', { name: 'Classification' }).selectOption('cui');
  await page.getByLabel('Your message').focus();
  await page.keyboard.type('Write two sentences about public libraries.');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Send');
  await page.keyboard.press('Enter');
  // The answer appears while it is written, in a polite live region.
  const live = page.locator('.civitas-message--assistant .civitas-message__body[aria-live="polite"]');
  await live.waitFor();
  await page.waitForURL(/\/c\/[0-9a-f-]+/, { timeout: 120_000 });
  const banner = page.locator('.civitas-classification').first();
  assert.match(await banner.innerText(), /CUI/);
  assert.equal(await page.locator('.civitas-message--assistant').count(), 1);
  assert.ok((await page.locator('.civitas-message--assistant .civitas-message__body').innerText()).trim().length > 0);
  await accessible(page, 'chat-conversation');
  const conversation = new URL(page.url()).pathname;

  // A long answer, stopped part-way: what was written is kept. The tiny
  // model sometimes ends a long answer early; then it is asked again.
  let asked = 1;
  for (;;) {
    asked += 1;
    await page.getByRole('textbox', { name: 'Your message' }).fill('Write a long essay of at least 2000 words about the history of public libraries, with many sections.');
    await page.getByRole('button', { name: 'Send' }).click();
    const state = await page.waitForFunction(
      () => {
        const busy = document.querySelector('.civitas-message__body[aria-busy="true"]');
        if (busy && busy.textContent.length > 20) return 'writing';
        if (!busy && !document.querySelector('#reply-form [data-send]')?.disabled) return 'done';
        return false;
      },
      null,
      { timeout: 120_000 },
    );
    if ((await state.jsonValue()) === 'writing') break;
    assert.ok(asked < 6, 'the model never wrote a long answer');
  }
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.getByText('Stopped before the end.').waitFor({ timeout: 60_000 });
  await page.getByRole('status').filter({ hasText: 'The answer was stopped.' }).waitFor();
  assert.equal(await page.locator('.civitas-message--assistant').count(), asked);
  await accessible(page, 'chat-stopped');

  // Figures on demand, feedback.
  await page.getByText('Details').last().click();
  await page.getByText('Tokens out').last().waitFor();
  await page.getByText('Give feedback').last().click();
  await page.getByText('Not helpful', { exact: true }).last().click();
  await page.getByLabel('Comment (optional)').last().fill('It stopped too early');
  await page.getByRole('button', { name: 'Send feedback' }).last().click();
  await page.getByText('You found this not helpful').waitFor();

  // Rename, then find it by searching.
  await page.getByText('Rename', { exact: true }).click();
  await page.getByLabel('Title').fill('Libraries memo');
  await page.getByRole('button', { name: 'Save the title' }).click();
  await page.getByRole('heading', { level: 1, name: 'Libraries memo' }).waitFor();
  await page.getByLabel('Search your conversations').fill('libraries memo');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('status').filter({ hasText: '1 conversations match' }).waitFor();
  await page.getByRole('link', { name: 'Libraries memo' }).click();
  assert.equal(new URL(page.url()).pathname, conversation);

  // Exports for records requests.
  const json = await context.request.get(`${base}${conversation}/export.json`);
  assert.equal(json.status(), 200);
  const exported = await json.json();
  assert.equal(exported.conversation.title, 'Libraries memo');
  assert.equal(exported.conversation.classification, 'cui');
  assert.equal(exported.messages.length, 2 * asked);
  assert.equal(exported.messages.at(-1).metadata.generation.finish, 'stopped');
  const html = await context.request.get(`${base}${conversation}/export.html`);
  assert.match(html.headers()['content-disposition'], /^attachment/);
  assert.match(await html.text(), /CUI — CONTROLLED UNCLASSIFIED INFORMATION/);

  // A phone-width screen (and 400 % zoom of a 1280-pixel window): no
  // sideways scrolling.
  await page.setViewportSize({ width: 320, height: 640 });
  await page.reload();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 320px`);
  await accessible(page, 'chat-phone');

  // A temporary chat is answered and leaves nothing behind.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${base}/temporary`);
  await accessible(page, 'chat-temporary');
  await page.getByLabel('Your message').fill('Say hello.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.getByRole('status').filter({ hasText: 'The answer is complete.' }).waitFor({ timeout: 120_000 });
  assert.equal(await page.locator('.civitas-message--assistant').count(), 1);
  noCspViolation(blocked);
  await context.close();
});

test('an admin creates a group, restricts a model, and the member no longer sees it', async () => {
  const admin = await open();
  await signIn(admin.page, EMAIL);
  const page = admin.page;
  await page.getByRole('link', { name: 'Administration' }).click();
  await page.getByRole('heading', { level: 1, name: 'Default agency' }).waitFor();
  await accessible(page, 'admin-overview');

  await page.getByRole('link', { name: 'Groups', exact: true }).click();
  await accessible(page, 'admin-groups');
  await page.getByRole('button', { name: 'Add the group' }).click();
  await page.locator('#group-name-error').waitFor();
  await accessible(page, 'admin-groups-error');
  await page.getByLabel('Name of the group').fill('Caseworkers');
  await page.getByRole('button', { name: 'Add the group' }).click();
  await page.getByRole('heading', { level: 1, name: 'Caseworkers' }).waitFor();
  await page.getByText(MODEL, { exact: true }).click();
  await page.getByRole('button', { name: 'Save model access' }).click();
  await page.getByRole('status').filter({ hasText: 'Model access was saved.' }).waitFor();
  await accessible(page, 'admin-group');

  await page.getByRole('link', { name: 'People', exact: true }).click();
  await page.getByLabel('E-mail address').fill(MEMBER);
  await page.getByLabel('Name', { exact: true }).fill('Carl Clerk');
  await page.getByLabel('Initial password (optional)').fill('short');
  await page.getByText('Caseworkers', { exact: true }).click();
  await page.getByRole('button', { name: 'Add the person' }).click();
  await page.locator('#person-password-error').waitFor();
  // What was ticked is kept when the form comes back.
  assert.equal(await page.getByRole('checkbox', { name: 'Caseworkers' }).isChecked(), true);
  await accessible(page, 'admin-people-error');
  await page.getByLabel('Initial password (optional)').fill(PASSWORD);
  await page.getByRole('button', { name: 'Add the person' }).click();
  await page.getByRole('status').filter({ hasText: 'The person was added.' }).waitFor();
  await accessible(page, 'admin-people');
  await page.getByRole('link', { name: 'Carl Clerk' }).click();
  await accessible(page, 'admin-person');

  const member = await open();
  await signIn(member.page, MEMBER);
  assert.deepEqual(await member.page.getByLabel('Model').locator('option').allInnerTexts(), [MODEL]);

  // The model manager takes the model away from the group.
  await page.getByRole('link', { name: 'Groups', exact: true }).click();
  await page.getByRole('link', { name: 'Caseworkers' }).click();
  await page.getByText(MODEL, { exact: true }).click();
  await page.getByRole('button', { name: 'Save model access' }).click();
  await page.getByRole('status').filter({ hasText: 'Model access was saved.' }).waitFor();

  await member.page.reload();
  await member.page.getByText('No model is available to you').waitFor();
  assert.equal(await member.page.getByLabel('Model').count(), 0);
  await accessible(member.page, 'chat-no-model');

  for (const [link, name] of [
    ['Pending approvals', 'admin-approvals'],
    ['Limits and budgets', 'admin-limits'],
    ['API keys', 'admin-keys'],
    ['Usage', 'admin-usage'],
    ['Rules of behaviour', 'admin-rules'],
    ['Records', 'admin-records'],
  ]) {
    await page.getByRole('link', { name: link, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: link }).waitFor();
    await accessible(page, name);
  }
  // Records: a legal hold refused without a reason, then placed; the
  // member is told on their settings page.
  await page.getByRole('link', { name: 'Records', exact: true }).click();
  await page.getByRole('button', { name: 'Place the hold' }).click();
  await page.locator('#hold-reason-error').waitFor();
  await accessible(page, 'admin-records-error');
  await page.getByLabel('Person under the hold').selectOption({ label: `Carl Clerk (${MEMBER})` });
  await page.getByLabel('Matter', { exact: true }).fill('CAA-2026-17');
  await page.getByLabel('Reason', { exact: true }).fill('Appeal before the administrative court on case 44-B.');
  await page.getByRole('button', { name: 'Place the hold' }).click();
  await page.getByRole('status').filter({ hasText: 'The legal hold is in force.' }).waitFor();
  await member.page.goto(`${base}/settings`);
  await member.page.getByText('A legal hold applies to your conversations (CAA-2026-17)').waitFor();
  // Break-glass: refused without a person and a reason, then open at once
  // (this server needs no second approver); the member sees it.
  await page.getByRole('link', { name: 'Break-glass access', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Break-glass access' }).waitFor();
  await accessible(page, 'admin-break-glass');
  await page.getByRole('button', { name: 'Ask for access' }).click();
  await page.locator('#access-person-error').waitFor();
  await accessible(page, 'admin-break-glass-error');
  await page.getByLabel('Person whose conversations you need to read').selectOption({ label: `Carl Clerk (${MEMBER})` });
  await page.getByLabel('Justification', { exact: true }).fill('Records request PRR-2026-118 from the state archives about case 44-B.');
  await page.getByRole('button', { name: 'Ask for access' }).click();
  await page.getByRole('status').filter({ hasText: 'Access is open.' }).waitFor();
  await page.getByRole('link', { name: "Read Carl Clerk's conversations" }).click();
  await page.getByRole('heading', { level: 1, name: 'Conversations of Carl Clerk' }).waitFor();
  await accessible(page, 'admin-break-glass-read');
  await member.page.goto(`${base}/settings`);
  await member.page.getByText('PRR-2026-118').waitFor();
  await accessible(member.page, 'settings-access');

  // The audit console (the administrator is a platform administrator).
  await page.getByRole('link', { name: 'Audit', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
  await page.getByLabel('Outcome').selectOption('success');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByRole('cell', { name: 'auth.sign_in', exact: true }).first().waitFor();
  await accessible(page, 'audit-console');
  noCspViolation(admin.blocked);
  noCspViolation(member.blocked);
  await member.context.close();
  await admin.context.close();
});

test('the pre-send preview shows what was found, lets the person change the level, edit or send', async () => {
  const { context, page, blocked } = await open();
  await signIn(page, EMAIL);
  await page.getByLabel('Model').selectOption(MODEL);
  await page.getByLabel('Your message').fill('Please write to Jeanne Martin, SSN 536-22-1234, about her appeal.');
  await page.getByRole('button', { name: 'Send' }).click();
  // The preview: what was found, highlighted, and what will happen.
  const preview = page.locator('#preview');
  await preview.getByRole('heading', { name: 'Before you send' }).waitFor();
  assert.ok(await preview.evaluate((node) => node === document.activeElement), 'the preview takes the focus');
  assert.match(await preview.innerText(), /Nothing leaves the agency/);
  assert.match(await preview.innerText(), /US Social Security number × 1/);
  assert.deepEqual(await preview.locator('mark').allInnerTexts(), ['Jeanne Martin', '536-22-1234']);
  await accessible(page, 'chat-preview');
  // Back to the message: nothing was sent.
  await preview.getByRole('button', { name: 'Edit the message' }).click();
  assert.equal(await page.locator('#preview').count(), 0);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'content');
  assert.equal(await page.locator('.civitas-message').count(), 0);
  // Again, at a higher level picked in the preview, then sent.
  await page.getByRole('button', { name: 'Send' }).click();
  await preview.getByLabel('Send at level').selectOption('cui');
  await preview.getByText(/at level CUI/).waitFor();
  assert.equal(await page.getByRole('combobox', { name: 'Classification' }).inputValue(), 'cui');
  await preview.getByRole('button', { name: 'Send' }).click();
  await page.waitForURL(/\/c\/[0-9a-f-]+/, { timeout: 120_000 });
  assert.match(await page.locator('.civitas-classification').first().innerText(), /CUI/);
  // Nothing worth a word: no preview, the message goes at once (the
  // answer is then stopped: its length is the tiny model's whim).
  await page.getByRole('textbox', { name: 'Your message' }).fill('Thank you.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('.civitas-message--user').nth(1).waitFor();
  assert.equal(await page.locator('#preview').count(), 0);
  const stop = page.getByRole('button', { name: 'Stop' });
  if (await stop.isVisible()) await stop.click();
  await page.waitForFunction(() => !document.querySelector('.civitas-message__body[aria-busy="true"]'), null, { timeout: 120_000 });
  noCspViolation(blocked);
  await context.close();
});

test('knowledge: the demo handbook is there; a collection takes several files, says what it refused and why, and deletes', async () => {
  const { context, page, blocked } = await open();
  await signIn(page, EMAIL);
  await page.click('a[href="/knowledge"]');
  await page.waitForURL(`${base}/knowledge`);
  // The demo collection is loaded on first start for the whole agency.
  await page.getByRole('link', { name: 'Agency handbook (demo)' }).waitFor();
  await accessible(page, 'knowledge');

  await page.fill('#name', 'Case law');
  await page.fill('#description', 'Decisions of the appeals board');
  await page.click('button[type="submit"]:has-text("Create the collection")');
  await page.waitForURL(/\/knowledge\/\d+$/);
  await page.getByRole('heading', { level: 1, name: 'Case law' }).waitFor();

  await page.setInputFiles('#files', [
    { name: 'appeals.md', mimeType: 'text/markdown', buffer: Buffer.from('# Appeals\n\nAn appeal must be lodged within 30 days of the decision.\n') },
    { name: 'tool.exe', mimeType: 'application/octet-stream', buffer: Buffer.from([0x4d, 0x5a, 0, 0, 0x90, 1, 2, 3]) },
  ]);
  await page.click('button[type="submit"]:has-text("Upload")');
  await page.getByText('appeals.md: queued.').waitFor();
  await page.getByText(/tool\.exe: .*cannot be ingested/).waitFor();
  // The document becomes ready and the page shows it without a reload;
  // the change is announced (unless it was ready before the page came).
  const first = await page.evaluate(() => ({
    ready: [...document.querySelectorAll('#documents td')].some((cell) => cell.textContent.trim() === 'Ready'),
    refresh: document.getElementById('documents').dataset.refresh,
  }));
  const readyAtOnce = first.ready;
  assert.equal(first.refresh, readyAtOnce ? 'false' : 'true');
  await page.getByRole('cell', { name: 'Ready' }).waitFor({ timeout: 60_000 });
  if (!readyAtOnce) {
    await page.waitForFunction(() => /appeals\.md: Ready/.test(document.getElementById('documents-status').textContent));
    assert.equal(await page.locator('#documents').getAttribute('data-refresh'), 'false');
  }
  await accessible(page, 'knowledge-collection');

  // The same search through the API with the session's cookie.
  const found = await page.evaluate(async () => {
    const response = await fetch('/v1/search', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': document.querySelector('input[name="csrf_token"]').value },
      body: JSON.stringify({ prompt: 'how long to lodge an appeal', method: 'lexical' }),
    });
    return response.json();
  });
  assert.ok(found.data.some((hit) => hit.chunk.content.includes('within 30 days')), JSON.stringify(found));

  await page.click('button:has-text("Delete appeals.md")');
  await page.getByText('The document was deleted.').waitFor();
  assert.equal(await page.getByRole('cell', { name: 'Ready' }).count(), 0);
  noCspViolation(blocked);
  await context.close();
});

test('chat from a collection: the answer comes with its numbered sources, each opening its passage', async () => {
  const { context, page, blocked } = await open();
  await signIn(page, EMAIL);
  // The demo handbook must be searchable first.
  for (let i = 0; i < 120; i += 1) {
    const ready = await page.evaluate(async () => {
      const collections = await (await fetch('/v1/collections')).json();
      const demo = collections.data.find((c) => c.name === 'Agency handbook (demo)');
      if (!demo) return false;
      const documents = await (await fetch(`/v1/documents?collection=${demo.id}`)).json();
      return documents.data.length === 10 && documents.data.every((d) => d.status === 'ready');
    });
    if (ready) break;
    await page.waitForTimeout(500);
  }
  await page.goto(`${base}/`);
  await page.locator('label.usa-checkbox__label', { hasText: 'Agency handbook (demo)' }).click();
  assert.ok(await page.getByLabel('Agency handbook (demo)').isChecked());
  await page.fill('#content', 'How many days per week may a full-time employee telework?');
  await page.click('#new-form button[data-send]');
  // The tiny model of the tests writes up to 400 tokens after reading the sources.
  await page.waitForURL(/\/c\/[0-9a-f-]+/, { timeout: 180000 });
  const sources = page.locator('.civitas-sources').last();
  await sources.waitFor({ timeout: 60000 });
  const items = sources.locator('li');
  assert.ok((await items.count()) >= 1);
  assert.match(await items.first().locator('summary').innerText(), /^\[1\] en-telework\.md/);
  await items.first().locator('summary').click();
  assert.match(await items.first().locator('blockquote').innerText(), /telework/i);
  // The source opens beside the answer; Escape closes it and gives the
  // focus back.
  const show = page.getByRole('button', { name: 'Show [1] beside the answer' }).last();
  await show.click();
  const panel = page.locator('#source-panel');
  await panel.waitFor();
  assert.match(await panel.locator('h2').innerText(), /^\[1\] en-telework\.md/);
  assert.match(await panel.locator('blockquote').innerText(), /telework/i);
  await accessible(page, 'chat-source-panel');
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Show [1] beside the answer');
  // A citation in the answer opens its source there too.
  const cite = page.locator('a.civitas-cite').first();
  if (await cite.count()) {
    await cite.click();
    await panel.waitFor();
    await page.keyboard.press('Escape');
  }
  // The choice stays with the conversation for the next question.
  assert.ok(await page.getByLabel('Agency handbook (demo)').isChecked());
  await accessible(page, 'chat-grounded');
  // A question none of the passages speaks of: said so, no model asked.
  await page.fill('#content', 'Zyxwvut qwertyuiop plover?');
  await page.click('#reply-form button[data-send]');
  await page.getByText('None of the chosen collections holds a passage about this question').waitFor({ timeout: 30_000 });
  noCspViolation(blocked);
  await context.close();
});
