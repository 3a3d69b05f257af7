/**
 * Builds the web console (console/) into console/dist, which dialplane serves at /console:
 * `npm run build:console`, run by `npm start` and `npm test` before they begin (about 0.1 s).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url));
export const CONSOLE_DIST = path.join(CONSOLE_DIR, 'dist');

export async function buildConsole(): Promise<void> {
  fs.mkdirSync(CONSOLE_DIST, { recursive: true });
  await build({
    entryPoints: [path.join(CONSOLE_DIR, 'src/main.ts')],
    outfile: path.join(CONSOLE_DIST, 'console.js'),
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    minify: true,
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  fs.copyFileSync(path.join(CONSOLE_DIR, 'index.html'), path.join(CONSOLE_DIST, 'index.html'));
  fs.copyFileSync(path.join(CONSOLE_DIR, 'console.css'), path.join(CONSOLE_DIST, 'console.css'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildConsole();
