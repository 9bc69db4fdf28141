#!/usr/bin/env node
// A `solc` command line over solc-js, for machines without a native solc.
//
// Answers the three ways Lockstep's tools call solc:
//   solc --version                        (forge, to detect the compiler version)
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths P]
//                                         (forge: JSON in on stdin, JSON out on stdout)
//   solc --bin [--optimize] [--optimize-runs N] <file | ->
//                                         (snark-verifier's compile_solidity: prints
//                                          "Binary:" and the creation code in hex, the
//                                          last contract of the source last)
// The solc-js module comes from LOCKSTEP_SOLC_MODULE (set by the wrapper in tools/bin).
'use strict';

const fs = require('fs');
const path = require('path');

const modulePath = process.env.LOCKSTEP_SOLC_MODULE;
if (!modulePath) {
  process.stderr.write('solc-shim: LOCKSTEP_SOLC_MODULE is not set (run scripts/setup.sh)\n');
  process.exit(2);
}
const solc = require(modulePath);

const args = process.argv.slice(2);

function readStdin() {
  return fs.readFileSync(0, 'utf8');
}

function optionValues(name) {
  const values = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name && i + 1 < args.length) values.push(args[++i]);
    else if (args[i].startsWith(name + '=')) values.push(args[i].slice(name.length + 1));
  }
  return values;
}

// Resolves imports the way solc does with --base-path/--include-path: relative to each
// root in turn, then as given.
function importResolver() {
  const roots = [...optionValues('--base-path'), ...optionValues('--include-path'), process.cwd()];
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      } catch (_) {
        // try the next root
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
  };
}

function versionText() {
  // Same shape as native solc; forge parses the version from the last line.
  const v = solc.version().replace('.Emscripten.clang', '');
  return `solc, the solidity compiler commandline interface\nVersion: ${v}.Linux.g++\n`;
}

function standardJson() {
  const input = readStdin();
  const output = solc.compile(input, { import: importResolver() });
  process.stdout.write(output);
}

function bin() {
  const files = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1] === '--optimize-runs'));
  const file = files.length === 0 ? '-' : files[files.length - 1];
  const source = file === '-' ? readStdin() : fs.readFileSync(file, 'utf8');
  const name = file === '-' ? '<stdin>' : file;
  const runs = optionValues('--optimize-runs');
  const input = {
    language: 'Solidity',
    sources: { [name]: { content: source } },
    settings: {
      optimizer: { enabled: args.includes('--optimize'), runs: runs.length ? Number(runs[0]) : 200 },
      outputSelection: { '*': { '*': ['evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: importResolver() }));
  let failed = false;
  for (const err of output.errors || []) {
    process.stderr.write((err.formattedMessage || err.message) + '\n');
    if (err.severity === 'error') failed = true;
  }
  if (failed) process.exit(1);
  const contracts = (output.contracts || {})[name] || {};
  for (const [contract, data] of Object.entries(contracts)) {
    process.stdout.write(`\n======= ${name}:${contract} =======\nBinary:\n${data.evm.bytecode.object}\n`);
  }
}

if (args.includes('--version') || args.includes('-v')) {
  process.stdout.write(versionText());
} else if (args.includes('--standard-json')) {
  standardJson();
} else if (args.includes('--bin')) {
  bin();
} else {
  process.stderr.write(
    'solc-shim: supported forms are --version, --standard-json and --bin [--optimize] <file|->\n',
  );
  process.exit(2);
}
