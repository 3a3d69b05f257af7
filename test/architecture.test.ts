import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './support/process.ts';

/**
 * The house rules a reader relies on (CONTRIBUTING.md), checked on the source itself: no module
 * imports itself back through others (type imports included), and the ground floors import
 * nothing above them.
 */
const SRC = path.join(REPO_ROOT, 'src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?'(\.[^']+)'|import\('(\.[^']+)'\)/g;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every source file with the source files it imports, as paths relative to src/. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    const targets = [...text.matchAll(IMPORT)].map((match) => path.relative(SRC, path.resolve(path.dirname(file), match[1] ?? match[2])));
    graph.set(path.relative(SRC, file), [...new Set(targets)]);
  }
  return graph;
}

/** The import cycles of a graph, each as the path that closes it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

test('the import graph of src/ has no cycle', () => {
  const graph = importGraph();
  assert.ok(graph.size > 50, 'the whole tree was read');
  assert.ok(
    graph.get('server.ts')?.includes('config.ts') && graph.get('server.ts')?.includes('edge/sip-edge.ts'),
    'imports are read, type imports included',
  );
  assert.deepEqual(
    cycles(graph).map((cycle) => cycle.join(' → ')),
    [],
  );
});

test('the cycle check finds a cycle when there is one', () => {
  const graph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  assert.deepEqual(cycles(graph), [['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
});

const GROUND_FLOORS: Array<[folder: string, mayImport: string[]]> = [
  // The SIP stack knows nothing of numbers, agents, the database or HTTP.
  ['sip', ['sip']],
  // Shared helpers depend on nothing of the application.
  ['common', ['common']],
  // TLS credentials meet the SIP stack through its TlsSockets interface, and nothing else.
  ['tls', ['tls', 'sip', 'common']],
  // Locating trunks in DNS needs the SIP stack's types, nothing of the application.
  ['dns', ['dns', 'sip']],
];

for (const [folder, mayImport] of GROUND_FLOORS) {
  test(`src/${folder}/ imports nothing above it`, () => {
    const outside = [...importGraph()]
      .filter(([file]) => file.startsWith(`${folder}/`))
      .flatMap(([file, targets]) =>
        targets.filter((target) => !mayImport.some((allowed) => target.startsWith(`${allowed}/`))).map((target) => `${file} → ${target}`),
      );
    assert.deepEqual(outside, []);
  });
}
