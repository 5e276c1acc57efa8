'use strict';
// Loads express-pouchdb with some of its internal modules replaced or
// extended. Nothing under node_modules is edited: the replacements are put
// into node's module cache under the original file names before
// express-pouchdb's index.js requires them.

const path = require('path');
const Module = require('module');

const EP_LIB = path.join(path.dirname(require.resolve('express-pouchdb/package.json')), 'lib');

function libFile(rel) {
  return path.join(EP_LIB, rel + '.js');
}

function provide(rel, exportsValue) {
  const filename = libFile(rel);
  const mod = new Module(filename, module);
  mod.filename = filename;
  mod.paths = Module._nodeModulePaths(path.dirname(filename));
  mod.exports = exportsValue;
  mod.loaded = true;
  require.cache[filename] = mod;
}

function original(rel) {
  return require(libFile(rel));
}

// Run `before(app)` ahead of an express-pouchdb module's own routes and
// `after(app)` right behind them.
function extend(rel, before, after) {
  const orig = original(rel);
  provide(rel, (app) => {
    if (before) before(app);
    orig(app);
    if (after) after(app);
  });
}

const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'none'];

function createLogger(levelName) {
  let level = LOG_LEVELS.indexOf(levelName);
  if (level === -1) level = LOG_LEVELS.indexOf('warning');
  const logger = {
    setLevel(name) {
      const idx = LOG_LEVELS.indexOf(name);
      if (idx !== -1) level = idx;
    },
  };
  LOG_LEVELS.slice(0, -1).forEach((name, idx) => {
    logger[name] = (message) => {
      if (idx < level) return;
      process.stderr.write('[' + new Date().toISOString() + '] [' + name + '] ' + message + '\n');
    };
  });
  return logger;
}

let loaded = null;

/**
 * settings: {dataDir: string|null, logLevel: string, serverUuid: string,
 *            vendorName: string, version: string}
 * Returns {expressPouchDB, logger}.
 */
function load(settings) {
  if (loaded) return loaded;
  const logger = createLogger(settings.logLevel);

  // 1. modules that must be in place before anything loads utils.js
  provide('clean-filename', (name) => name); // keep "account/3a/63/..." verbatim
  provide('compression', () => {}); // no gzip: it stalls streamed _changes
  provide('uuids', require('./compat-docs').newDocIds); // 32 hex chars, like CouchDB
  provide('logging-infrastructure', (app) => {
    // log to stderr, never to ./log.txt
    app.couchLogger = logger;
    if (app.couchConfig) {
      app.couchConfig.on('log.level', () => logger.setLevel(app.couchConfig.get('log', 'level')));
    }
  });

  // 2. CouchDB-style replies everywhere express-pouchdb answers itself
  const http = require('./http-util');
  const utils = original('utils');
  utils.sendJSON = http.sendJSON;
  utils.sendError = http.sendError;
  const query = require('./compat-query');
  utils.jsonParser = query.createJsonParser();
  utils.setJsonOrPlaintext = (res) => res.setHeader('Content-Type', 'application/json');
  utils.setLocation = (res, location) => {
    const req = res.req;
    const dbName = req.params && req.params.db;
    let rest = String(location);
    if (dbName && rest.startsWith(dbName)) {
      let tail = rest.slice(dbName.length);
      if (tail.startsWith('/') && req.params.attachment === undefined) {
        // a document id: encode it, keeping a _design/ or _local/ prefix
        const id = tail.slice(1);
        const prefix = /^_(design|local)\//.test(id) ? id.slice(0, id.indexOf('/') + 1) : '';
        tail = '/' + prefix + encodeURIComponent(id.slice(prefix.length));
      }
      rest = encodeURIComponent(dbName) + tail;
    }
    const host = req.headers.host || ('127.0.0.1:' + req.socket.localPort);
    res.setHeader('Location', 'http://' + host + '/' + rest);
  };
  // "Document update conflict" -> CouchDB's wording, also in _bulk_docs rows
  const pouchErrors = require('pouchdb-errors');
  pouchErrors.REV_CONFLICT.message = 'Document update conflict.';

  const dbCache = original('create-or-delete-dbs');
  const {createCompatDb} = require('./compat-db');
  const auth = require('./compat-auth');
  const compatDb = createCompatDb({dataDir: settings.dataDir, dbCache, checkAccess: auth.checkDbAccess});
  utils.setDBOnReq = compatDb.setDBOnReq;

  // 3. routes
  const docs = require('./compat-docs');
  const {installChanges} = require('./compat-changes');

  provide('routes/root', (app) => {
    app.get('/', (req, res) => {
      http.sendJSON(res, 200, {
        couchdb: 'Welcome',
        version: settings.version,
        git_sha: 'pouchdb-7.3.1',
        uuid: settings.serverUuid,
        features: [],
        vendor: {name: settings.vendorName, version: settings.serverVersion},
      });
    });
    app.get('/_up', (req, res) => {
      http.sendJSON(res, 200, {status: 'ok', seeds: {}});
    });
  });
  provide('routes/authorization', auth.installAuthorization);
  provide('routes/security', auth.installSecurity);
  provide('routes/all-dbs', (app) => {
    query.installAllDbsChecks(app);
    compatDb.installAllDbs(app);
  });
  provide('routes/changes', installChanges);
  extend('routes/db', compatDb.installBefore);
  extend('routes/attachments', docs.installAttachmentRoutes);
  extend('routes/documents', docs.installDocumentRoutes);
  extend('routes/all-docs', query.installAllDocsChecks);
  extend('routes/views', query.installViewChecks);
  extend('routes/bulk-get', docs.installBulkGet);
  extend('routes/find', docs.installIndexDelete);

  loaded = {expressPouchDB: require('express-pouchdb'), logger};
  return loaded;
}

module.exports = {load, createLogger};
