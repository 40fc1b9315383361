// A Node test-runner reporter that writes only `{ "passed": N, "failed": M }` (tests, not the
// suites or files around them) so scripts/run-tests.mjs can print one total with Playwright's.
// A test is a leaf when no deeper test finished since the last one at its level.
export default async function* countReporter(source) {
  let passed = 0;
  let failed = 0;
  const childSeen = [];
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const n = event.data.nesting;
    const leaf = !childSeen[n + 1] && event.data.details?.type !== 'suite';
    childSeen[n + 1] = false;
    childSeen[n] = true;
    if (!leaf || event.data.skip || event.data.todo) continue;
    if (event.type === 'test:pass') passed++;
    else failed++;
  }
  yield JSON.stringify({ passed, failed });
}
