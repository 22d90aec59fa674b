// Benchmark: what the chat page weighs as the browser receives it, and how
// fast its HTML starts to arrive. Run by `scripts/bench.sh pages`:
//
//   CIVITAS_BIN=.../civitas CIVITAS_TEST_MODELS_DIR=... node tests/browser/page-weight.mjs
//
// Sizes are the encoded (compressed) bodies the browser fetched, from the
// Resource Timing API; time to first byte is responseStart - requestStart
// of the page's own HTML, median of 20 loads on loopback.

import { ADMIN_EMAIL, MODEL, launchChromium, signIn, startCivitas } from './harness.mjs';

const LOADS = 20;

async function weigh(page, url) {
  await page.goto(url);
  await page.waitForLoadState('networkidle');
  return page.evaluate(() => {
    const kinds = {};
    const add = (kind, bytes) => {
      kinds[kind] = (kinds[kind] || 0) + bytes;
    };
    const [navigation] = performance.getEntriesByType('navigation');
    add('html', navigation.encodedBodySize);
    for (const entry of performance.getEntriesByType('resource')) {
      const path = new URL(entry.name).pathname;
      const kind = path.endsWith('.css') ? 'css' : path.endsWith('.js') ? 'js' : /\.(woff2?|ttf)$/.test(path) ? 'fonts' : 'other';
      add(kind, entry.encodedBodySize);
    }
    return kinds;
  });
}

async function firstByte(page, url) {
  const times = [];
  for (let i = 0; i < LOADS; i += 1) {
    await page.goto(url);
    times.push(await page.evaluate(() => {
      const [navigation] = performance.getEntriesByType('navigation');
      return navigation.responseStart - navigation.requestStart;
    }));
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(LOADS / 2)], worst: times[LOADS - 1] };
}

const civitas = await startCivitas();
const browser = await launchChromium();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, civitas.base, ADMIN_EMAIL);
  await page.getByLabel('Model').selectOption(MODEL);
  await page.getByRole('textbox', { name: 'Your message' }).fill('Write two sentences about public libraries.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.waitForURL(/\/c\//, { timeout: 120_000 });
  const conversation = page.url().split('#')[0];
  const rows = [];
  for (const [name, url] of [
    ['new chat page', `${civitas.base}/`],
    ['conversation page (one question, one answer)', conversation],
  ]) {
    // A fresh context, so nothing comes from the cache.
    const fresh = await browser.newContext({ storageState: await context.storageState() });
    const weighed = await weigh(await fresh.newPage(), url);
    await fresh.close();
    const total = Object.values(weighed).reduce((sum, bytes) => sum + bytes, 0);
    const ttfb = await firstByte(page, url);
    rows.push({ name, ...weighed, total, ttfb });
  }
  console.log('| page | HTML | CSS | JS | fonts | other | total (bytes, compressed) | first byte, median / worst of 20 (ms) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const n = (value) => (value || 0).toLocaleString('en-US');
    console.log(`| ${row.name} | ${n(row.html)} | ${n(row.css)} | ${n(row.js)} | ${n(row.fonts)} | ${n(row.other)} | ${n(row.total)} | ${row.ttfb.median.toFixed(1)} / ${row.ttfb.worst.toFixed(1)} |`);
  }
  await context.close();
} finally {
  await browser.close();
  civitas.stop();
}
