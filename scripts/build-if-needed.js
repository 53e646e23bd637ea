// Builds dist/ when it is missing or older than any file under src/, so `npm start` works on a fresh clone.
const { statSync, readdirSync, existsSync } = require('node:fs');
const { join } = require('node:path');
const { execSync } = require('node:child_process');

const root = join(__dirname, '..');
const entry = join(root, 'dist', 'src', 'main.js');

function newest(dir) {
  let latest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    latest = Math.max(latest, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return latest;
}

if (!existsSync(entry) || statSync(entry).mtimeMs < newest(join(root, 'src'))) {
  execSync('npx tsc -p tsconfig.build.json', { cwd: root, stdio: 'inherit' });
}
