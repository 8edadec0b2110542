#!/usr/bin/env node
// Local S3-compatible server for the mod_hgs3cache integration tests.
//
// @20minutes/s3rver verifies SigV4 signatures (header and presigned), which
// the tests rely on; its only credentials are S3RVER / S3RVER.
//
// usage: node server.js --directory DIR [--address 127.0.0.1] [--port 0]
//                       [--bucket NAME]... [--silent] [--watch-stdin]
//                       [--key PEM --cert PEM] [--stats FILE]
//
// With --key and --cert it serves https. --stats FILE keeps a JSON object
// {"connections": N, "tls_connections": N, "tls_resumed": N} there, rewritten
// on each accepted TCP connection and each completed TLS handshake
// ('secureConnection'; tls_resumed counts those that resumed a session), so a
// test can count how many connections and handshakes its clients made.
//
// Once listening it prints one line "PORT <n>" on stdout (the bound port),
// then request logs unless --silent. It exits on SIGTERM/SIGINT, and with
// --watch-stdin also when its stdin is closed (so it never outlives the
// process that started it).
'use strict';

const fs = require('fs');
const S3rver = require('@20minutes/s3rver');

function usage(msg) {
  process.stderr.write(`server.js: ${msg}\n`);
  process.stderr.write(
    'usage: node server.js --directory DIR [--address A] [--port N] ' +
      '[--bucket NAME]... [--silent] [--watch-stdin] [--key PEM --cert PEM] ' +
      '[--stats FILE]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    address: '127.0.0.1',
    port: 0,
    directory: null,
    buckets: [],
    silent: false,
    watchStdin: false,
    key: null,
    cert: null,
    stats: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--address':
        opts.address = value();
        break;
      case '--port': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) > 65535) usage(`bad port ${v}`);
        opts.port = Number(v);
        break;
      }
      case '--directory':
        opts.directory = value();
        break;
      case '--bucket':
        opts.buckets.push({ name: value() });
        break;
      case '--silent':
        opts.silent = true;
        break;
      case '--watch-stdin':
        opts.watchStdin = true;
        break;
      case '--key':
        opts.key = value();
        break;
      case '--cert':
        opts.cert = value();
        break;
      case '--stats':
        opts.stats = value();
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  if (!opts.directory) usage('--directory is required');
  if (!opts.key !== !opts.cert) usage('--key and --cert go together');
  return opts;
}

function countConnections(httpServer, file) {
  const stats = { connections: 0, tls_connections: 0, tls_resumed: 0 };
  const save = () => fs.writeFileSync(file, JSON.stringify(stats));
  save();
  httpServer.on('connection', () => {
    stats.connections++;
    save();
  });
  httpServer.on('secureConnection', (socket) => {
    stats.tls_connections++;
    if (socket.isSessionReused()) stats.tls_resumed++;
    save();
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  fs.mkdirSync(opts.directory, { recursive: true });

  const server = new S3rver({
    address: opts.address,
    port: opts.port,
    directory: opts.directory,
    silent: opts.silent,
    // 127.0.0.1 is never taken as a virtual-host bucket name; path-style only.
    vhostBuckets: false,
    configureBuckets: opts.buckets,
    ...(opts.key ? { key: fs.readFileSync(opts.key), cert: fs.readFileSync(opts.cert) } : {}),
  });

  let stopping = false;
  const stop = (why) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`s3rver: stopping (${why})\n`);
    // close() waits for keep-alive connections; do not wait for long.
    setTimeout(() => process.exit(0), 500).unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (opts.watchStdin) {
    process.stdin.on('end', () => stop('stdin closed'));
    process.stdin.on('error', () => stop('stdin error'));
    process.stdin.resume();
  }

  const addr = await server.run();
  if (opts.stats) countConnections(server.httpServer, opts.stats);
  process.stdout.write(`PORT ${addr.port}\n`);
}

main().catch((err) => {
  process.stderr.write(`s3rver: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
