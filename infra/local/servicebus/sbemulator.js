#!/usr/bin/env node
'use strict';
// sbemulator: a local Azure Service Bus stand-in for the azservicebus Go SDK
// (AMQP 1.0 on rhea, queues from a JSON file, optional on-disk journal).
// See docs/servicebus-emulator.md.
//
//   node sbemulator.js --port 5672 --config queues.json [--data DIR] [--admin-port N] [--host 127.0.0.1]
//
// Prints one line starting with "sbemulator ready" once it accepts connections.

const http = require('http');
const path = require('path');
const config = require('./lib/config.js');
const { Journal } = require('./lib/journal.js');
const { Broker } = require('./lib/broker.js');
const { Server } = require('./lib/amqp.js');

const USAGE = 'usage: node sbemulator.js --port N --config FILE [--data DIR] [--admin-port N] [--host 127.0.0.1]';

function log(msg) {
  process.stderr.write(`sbemulator: ${msg}\n`);
}

function die(msg) {
  log(msg);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 5672, config: path.join(__dirname, 'queues.json'), data: '', adminPort: -1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value\n${USAGE}`);
      return argv[++i];
    };
    const port = (name, v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) die(`${name}: ${JSON.stringify(v)} is not a TCP port (0-65535)`);
      return n;
    };
    switch (a) {
      case '--port': opts.port = port(a, val()); break;
      case '--admin-port': opts.adminPort = port(a, val()); break;
      case '--config': opts.config = val(); break;
      case '--data': opts.data = val(); break;
      case '--host': opts.host = val(); break;
      case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0); break;
      default: die(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  return opts;
}

// lockDataDir refuses to share a data directory with another running
// emulator: two writers would interleave their journals.
function lockDataDir(dir) {
  const fs = require('fs');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'sbemulator.pid');
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (pid && pid !== process.pid) {
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sbemulator');
      } catch { /* not running */ }
      if (alive) die(`data dir ${dir} is in use by another emulator (pid ${pid}); stop it or give another --data`);
    }
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
  fs.writeFileSync(file, `${process.pid}\n`);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let cfg;
  try {
    cfg = config.load(opts.config);
  } catch (e) {
    die(e.message);
  }
  if (opts.data) lockDataDir(path.resolve(opts.data));
  const journal = new Journal(opts.data ? path.resolve(opts.data) : '', log);
  const broker = new Broker(cfg, journal, log);
  try {
    broker.restore();
  } catch (e) {
    die(`data dir ${opts.data}: ${e.message}`);
  }
  const timer = setInterval(() => broker.tick(), 100);
  const server = new Server(broker, log);

  let admin = null;
  const startAdmin = (cb) => {
    if (opts.adminPort < 0) return cb(null, -1);
    admin = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/stats') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(broker.stats()));
      } else if (req.method === 'GET' && req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('GET /stats or /healthz\n');
      }
    });
    admin.on('error', (e) => cb(e));
    admin.listen(opts.adminPort, opts.host, () => cb(null, admin.address().port));
  };

  server.listen(opts.host, opts.port, (err, port) => {
    if (err) die(`listen on ${opts.host}:${opts.port}: ${err.message}`);
    startAdmin((aerr, aport) => {
      if (aerr) die(`admin listen on ${opts.host}:${opts.adminPort}: ${aerr.message}`);
      const names = cfg.queues.map((q) => q.name).join(',');
      const adminPart = aport >= 0 ? ` admin=http://${opts.host}:${aport}` : '';
      process.stdout.write(`sbemulator ready amqp=${opts.host}:${port}${adminPart} queues=${names} data=${opts.data || '(memory)'}\n`);
    });
  });

  let stopping = false;
  const stop = (sig) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping`);
    clearInterval(timer);
    if (admin) admin.close();
    // Drop the connections first so no new work arrives, then write out what
    // the journal still holds.
    server.close(() => {});
    journal.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  // A protocol error rhea throws while handling one connection's bytes must
  // not take the other clients down with it.
  process.on('uncaughtException', (e) => log(`internal error (continuing): ${e.stack || e}`));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
