#!/usr/bin/env node
'use strict';
// CouchDB 3 compatible development server for kazoo_vm: express-pouchdb 4.2.0
// and PouchDB 7.3.1 with a compatibility layer. It is NOT Apache CouchDB.
//
//   node server.js --host 127.0.0.1 --port PORT (--in-memory | --data-dir DIR)
//                  [--admin USER:PASS] [--log-level LEVEL] [--request-timeout SECONDS]
//                  [--exit-with-stdin]
//
// When ready it prints one line to stdout,
//   {"ready": true, "url": "http://127.0.0.1:<port>"}
// and everything else goes to stderr.

const http = require('http');
const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const asyncHooks = require('async_hooks');

const COUCHDB_VERSION = '3.3.3';
const SERVER_VERSION = require('./package.json').version;
const VENDOR_NAME = 'kazoo_vm CouchDB-compatible development server ' +
  '(express-pouchdb 4.2.0 + PouchDB 7.3.1); not Apache CouchDB';

const USAGE = 'usage: node server.js --host HOST --port PORT (--in-memory | --data-dir DIR) ' +
  '[--admin USER:PASS] [--log-level debug|info|warning|error|none] [--request-timeout SECONDS] ' +
  '[--exit-with-stdin]';

// ---------------------------------------------------------------- arguments

function fail(message) {
  process.stderr.write('couchdb-dev-server: ' + message + '\n' + USAGE + '\n');
  process.exit(2);
}

function parseArgs(argv) {
  const out = {
    host: '127.0.0.1',
    port: 5984,
    inMemory: false,
    dataDir: null,
    admin: null,
    logLevel: 'warning',
    requestTimeout: 120,
    exitWithStdin: false,
  };
  const withValue = new Set(['--host', '--port', '--data-dir', '--admin', '--log-level',
    '--request-timeout']);
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (withValue.has(arg) && value === undefined) {
      if (i + 1 >= argv.length) fail(arg + ' needs a value');
      value = argv[++i];
    }
    switch (arg) {
      case '--host':
        out.host = value;
        break;
      case '--port':
        if (!/^\d+$/.test(value) || Number(value) > 65535) fail('bad --port ' + value);
        out.port = Number(value);
        break;
      case '--in-memory':
        out.inMemory = true;
        break;
      case '--exit-with-stdin':
        out.exitWithStdin = true;
        break;
      case '--data-dir':
        out.dataDir = value;
        break;
      case '--admin': {
        const colon = value.indexOf(':');
        if (colon <= 0) fail('--admin wants USER:PASS');
        out.admin = {name: value.slice(0, colon), password: value.slice(colon + 1)};
        break;
      }
      case '--log-level':
        out.logLevel = value;
        break;
      case '--request-timeout':
        if (!(Number(value) > 0)) fail('bad --request-timeout ' + value);
        out.requestTimeout = Number(value);
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
        break;
      default:
        fail('unknown argument ' + argv[i]);
    }
  }
  if (out.inMemory === (out.dataDir !== null)) {
    fail('give exactly one of --in-memory and --data-dir DIR');
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));

// The parent holds our stdin open for as long as it lives: when the pipe ends (the parent exited, even killed
// with SIGKILL), so do we. A server owned by nobody would keep the data directory and the port.
if (args.exitWithStdin) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

// A parent that closed our pipes must not turn every later log line into
// an EPIPE exception.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

// stdout carries only the ready line; anything printed by libraries goes
// to stderr so a caller that stops reading stdout never blocks us.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

// --------------------------------------------- request context and crashes

const {sendJSON, sendError} = require('./http-util');

const requestContext = new asyncHooks.AsyncLocalStorage();
const CONTEXT = Symbol('couchdbDevServerRequest');
// Remember which request created each promise, so an unhandled rejection
// can still be answered with a 500 instead of leaving the client hanging.
asyncHooks.createHook({
  init(asyncId, type, triggerAsyncId, resource) {
    if (type === 'PROMISE') {
      const ctx = requestContext.getStore();
      if (ctx) resource[CONTEXT] = ctx;
    }
  },
}).enable();

let logger = {error: (m) => process.stderr.write(m + '\n'), warning: (m) => process.stderr.write(m + '\n')};

function answerCrashed(ctx, err) {
  if (!ctx || !ctx.res || ctx.res.writableEnded) return;
  try {
    if (ctx.res.headersSent) {
      ctx.res.end();
    } else {
      sendError(ctx.res, err && err.status ? err : {
        status: 500, error: 'unknown_error', reason: String((err && err.message) || err),
      });
    }
  } catch (e) {
    // nothing more we can do for this request
  }
}

process.on('unhandledRejection', (reason, promise) => {
  logger.error('unhandled rejection: ' + ((reason && reason.stack) || reason));
  answerCrashed(promise && promise[CONTEXT], reason);
});
process.on('uncaughtException', (err) => {
  logger.error('uncaught exception: ' + ((err && err.stack) || err));
  answerCrashed(requestContext.getStore(), err);
});

// ------------------------------------------------------------------ PouchDB

function buildPouchDB() {
  let PouchDB = require('pouchdb-core')
    .plugin(require('pouchdb-adapter-http'))
    .plugin(require('pouchdb-mapreduce'))
    .plugin(require('pouchdb-replication'));
  if (args.inMemory) {
    PouchDB = PouchDB.plugin(require('pouchdb-adapter-memory'));
    return PouchDB.defaults({adapter: 'memory'});
  }
  PouchDB = PouchDB.plugin(require('pouchdb-adapter-leveldb'));
  return PouchDB.defaults({adapter: 'leveldb', prefix: args.dataDir + path.sep});
}

function serverUuid() {
  if (args.dataDir) {
    // stable for one data directory, without writing a config file
    return crypto.createHash('md5').update('couchdb-dev-server:' + args.dataDir).digest('hex');
  }
  return crypto.randomBytes(16).toString('hex');
}

// chttpd echoes a well-formed X-Couch-Request-ID (letters, digits, "-" and "_", at most 36), which lets a client
// match each answer to its request, and makes up a 10-hex-digit one otherwise.
function requestId(req) {
  const sent = req.headers['x-couch-request-id'];
  if (typeof sent === 'string' && /^[A-Za-z0-9_-]{1,36}$/.test(sent)) {
    return sent;
  }
  return crypto.randomBytes(5).toString('hex');
}

function isStreamingRequest(req) {
  const url = req.url || '';
  if (/^\/[^/?]+\/_changes(\?|$)/.test(url)) {
    return /[?&]feed=(longpoll|continuous|eventsource)/.test(url);
  }
  return url.startsWith('/_db_updates') || url.startsWith('/_replicate');
}

async function main() {
  if (args.dataDir) {
    args.dataDir = path.resolve(args.dataDir);
    fs.mkdirSync(args.dataDir, {recursive: true});
  }

  const overrides = require('./overrides');
  const loaded = overrides.load({
    dataDir: args.dataDir,
    logLevel: args.logLevel,
    serverUuid: serverUuid(),
    vendorName: VENDOR_NAME,
    version: COUCHDB_VERSION,
    serverVersion: SERVER_VERSION,
  });
  logger = loaded.logger;

  const app = loaded.expressPouchDB({
    mode: 'fullCouchDB',
    inMemoryConfig: true, // never write ./config.json
    overrideMode: {exclude: ['routes/log', 'routes/fauxton']},
  });
  app.disable('x-powered-by');
  app.set('etag', false); // documents carry "<rev>" ETags, not express hashes
  app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
    logger.error('request failed: ' + ((err && err.stack) || err));
    sendError(res, err);
  });

  await app.setPouchDB(buildPouchDB());

  if (args.admin) {
    await new Promise((resolve, reject) => {
      app.couchConfig.set('admins', args.admin.name, args.admin.password, (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  const timeoutMs = args.requestTimeout * 1000;
  const server = http.createServer((req, res) => {
    res.setHeader('Server', 'CouchDB/' + COUCHDB_VERSION + ' (kazoo_vm dev server; PouchDB 7.3.1)');
    res.setHeader('X-Couch-Request-ID', requestId(req));
    const ctx = {req, res};
    requestContext.run(ctx, () => {
      if (!isStreamingRequest(req)) {
        const watchdog = setTimeout(() => {
          logger.error('request not answered in ' + args.requestTimeout + ' s: ' +
            req.method + ' ' + req.url);
          if (!res.headersSent) {
            sendJSON(res, 500, {error: 'timeout', reason: 'The request was not answered in time.'});
          } else if (!res.writableEnded) {
            res.end();
          }
        }, timeoutMs);
        watchdog.unref();
        res.on('close', () => clearTimeout(watchdog));
      }
      app(req, res);
    });
  });
  server.keepAliveTimeout = 65000;
  server.headersTimeout = 66000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, args.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error('server error: ' + err.message));

  const port = server.address().port;
  const host = args.host.includes(':') ? '[' + args.host + ']' : args.host;
  process.stdout.write(JSON.stringify({ready: true, url: 'http://' + host + ':' + port}) + '\n');

  const stop = () => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write('couchdb-dev-server: failed to start: ' + ((err && err.stack) || err) + '\n');
  process.exit(1);
});
