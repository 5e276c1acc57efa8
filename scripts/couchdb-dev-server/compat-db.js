'use strict';
// Database level behaviour of CouchDB 3: name rules, names kept verbatim
// (slashes included), 404 "Database does not exist." for anything inside a
// missing database, DELETE of a missing database, sorted _all_dbs, default
// admin-only security object, design document validation on save.

const fs = require('fs');
const path = require('path');
const wrappers = require('pouchdb-wrappers');
const {sendJSON, sendError} = require('./http-util');
const {bulkDocsHandler} = require('./ddoc-validation');

const DB_NAME_RE = /^[a-z][a-z0-9_$()+/-]*$/;
const SYSTEM_DBS = new Set(['_users', '_replicator', '_global_changes']);
const HIDDEN_DBS = new Set(['pouch__auth_sessions__', 'pouch__all_dbs__']);

// What CouchDB 3 stores for a new database ([couchdb] default_security =
// admin_only).
const DEFAULT_SECURITY = {
  members: {roles: ['_admin']},
  admins: {roles: ['_admin']},
};

const DB_MISSING = {error: 'not_found', reason: 'Database does not exist.'};

function illegalNameBody(name) {
  return {
    error: 'illegal_database_name',
    reason: "Name: '" + name + "'. Only lowercase characters (a-z), digits (0-9), and any " +
      'of the characters _, $, (, ), +, -, and / are allowed. Must begin with a letter.',
  };
}

function isLegalName(name) {
  return SYSTEM_DBS.has(name) || DB_NAME_RE.test(name);
}

// One lock for creations and deletions so two concurrent PUT /db cannot
// both answer 201.
let lifecycleChain = Promise.resolve();
function serialized(task) {
  const run = lifecycleChain.then(task, task);
  lifecycleChain = run.catch(() => {});
  return run;
}

function createCompatDb(options) {
  const dataDir = options.dataDir || null;
  const dbCache = options.dbCache; // express-pouchdb's create-or-delete-dbs
  const checkAccess = options.checkAccess || ((req, res, next) => next());

  async function ensureParentDir(name) {
    if (dataDir && name.includes('/')) {
      await fs.promises.mkdir(path.dirname(path.join(dataDir, name)), {recursive: true});
    }
  }

  async function dbExists(PouchDB, name) {
    const names = await PouchDB.allDbs();
    return names.indexOf(name) !== -1;
  }

  // Replacement for utils.setDBOnReq.
  async function setDBOnReq(dbName, dbWrapper, req, res, next) {
    let db;
    try {
      if (!(await dbExists(req.PouchDB, dbName))) {
        return sendJSON(res, 404, DB_MISSING);
      }
      await ensureParentDir(dbName);
      db = await dbCache.getOrCreateDB(req.PouchDB, dbName);
      await dbWrapper.wrap(dbName, db);
    } catch (err) {
      return sendError(res, err);
    }
    req.db = db;
    checkAccess(req, res, next);
  }

  // Routes registered in front of express-pouchdb's routes/db.js.
  function installBefore(app) {
    app.put('/:db', (req, res) => {
      const name = req.params.db;
      if (!isLegalName(name)) {
        return sendJSON(res, 400, illegalNameBody(name));
      }
      serialized(async () => {
        if (await dbExists(req.PouchDB, name)) {
          return sendJSON(res, 412, {
            error: 'file_exists',
            reason: 'The database could not be created, the file already exists.',
          });
        }
        await ensureParentDir(name);
        const db = await dbCache.getOrCreateDB(req.PouchDB, name);
        await db.info(); // opens it; PouchDB then registers it in allDbs
        await app.dbWrapper.wrap(name, db);
        if (!SYSTEM_DBS.has(name)) {
          await db.putSecurity(DEFAULT_SECURITY);
        }
        res.setHeader('Location', absoluteUrl(req, '/' + encodeURIComponent(name)));
        sendJSON(res, 201, {ok: true});
      }).catch((err) => sendError(res, err));
    });

    app.delete('/:db', (req, res) => {
      const name = req.params.db;
      if (req.query.rev !== undefined) {
        return sendJSON(res, 400, {
          error: 'bad_request',
          reason: 'You tried to DELETE a database with a ?rev= parameter. ' +
            'Did you mean to DELETE a document instead?',
        });
      }
      serialized(async () => {
        if (!(await dbExists(req.PouchDB, name))) {
          return sendJSON(res, 404, DB_MISSING);
        }
        await dbCache.deleteDB(req.PouchDB, name);
        sendJSON(res, 200, {ok: true});
      }).catch((err) => sendError(res, err));
    });

    // CouchDB-shaped info: extra fields clients may read.
    app.dbWrapper.registerWrapper((name, db, next) => {
      wrappers.installWrapperMethods(db, {
        info: (orig) => orig().then((info) => {
          info.db_name = name;
          if (info.purge_seq === undefined) info.purge_seq = 0;
          if (info.compact_running === undefined) info.compact_running = false;
          if (info.props === undefined) info.props = {};
          if (info.sizes === undefined) {
            const size = Number(info.disk_size) || 0;
            const data = Number(info.data_size) || 0;
            info.sizes = {file: size, external: data, active: data};
          }
          return info;
        }),
        bulkDocs: bulkDocsHandler,
      });
      return next();
    });
  }

  // GET /_all_dbs, sorted, with CouchDB's paging parameters.
  function installAllDbs(app) {
    app.get('/_all_dbs', async (req, res) => {
      try {
        let names = (await req.PouchDB.allDbs()).filter((n) => !HIDDEN_DBS.has(n));
        names.sort();
        const q = req.query;
        const descending = q.descending === true;
        if (descending) names.reverse();
        const start = pick(q, 'startkey', 'start_key');
        const end = pick(q, 'endkey', 'end_key');
        const inclusiveEnd = q.inclusive_end !== false;
        names = names.filter((n) => {
          if (typeof start === 'string' && (descending ? n > start : n < start)) return false;
          if (typeof end === 'string') {
            if (descending ? n < end : n > end) return false;
            if (!inclusiveEnd && n === end) return false;
          }
          return true;
        });
        const skip = Number.isInteger(q.skip) && q.skip > 0 ? q.skip : 0;
        names = names.slice(skip);
        if (Number.isInteger(q.limit) && q.limit >= 0) names = names.slice(0, q.limit);
        sendJSON(res, 200, names);
      } catch (err) {
        sendError(res, err);
      }
    });
  }

  return {setDBOnReq, installBefore, installAllDbs};
}

function pick(query, a, b) {
  return query[a] !== undefined ? query[a] : query[b];
}

function absoluteUrl(req, pathname) {
  const host = req.headers.host || ('127.0.0.1:' + req.socket.localPort);
  return 'http://' + host + pathname;
}

module.exports = {createCompatDb, isLegalName, illegalNameBody, absoluteUrl, DB_MISSING};
