// The layering the design asks for, checked on the source: a file imports another top-level
// layer (src/<layer>/) only through an index.ts (its public face), and no engine or shared layer
// imports a web framework: Fastify and its plugins belong to src/server/.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

const layerOf = (file: string): string => path.relative(src, file).split(path.sep)[0]!;
const files = sourceFiles(src);

test('a layer imports another only through its index.ts', () => {
  const wrong: string[] = [];
  for (const file of files) {
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), spec);
      if (!target.startsWith(src)) continue;
      if (layerOf(target) === layerOf(file) || path.relative(src, target).split(path.sep).length === 1) continue;
      if (path.basename(target) !== 'index.js') wrong.push(`${path.relative(src, file)} imports ${spec}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('only src/server imports a web framework', () => {
  const wrong = files.flatMap((file) =>
    importsOf(file)
      .filter((spec) => /^(fastify|@fastify\/|fastify-)/.test(spec) && layerOf(file) !== 'server')
      .map((spec) => `${path.relative(src, file)} imports ${spec}`),
  );
  assert.deepEqual(wrong, []);
  // The check must see the server's own imports, or it proves nothing.
  assert.ok(files.some((f) => layerOf(f) === 'server' && importsOf(f).some((s) => s === 'fastify')));
});
