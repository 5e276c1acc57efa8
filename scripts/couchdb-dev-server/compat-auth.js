'use strict';
// Authorization the way CouchDB 3 decides it, evaluated before any PouchDB
// call: express-pouchdb leaves several anonymous writes hanging forever
// once a server admin exists (PUT /db, PUT /db/_security, design docs).
//
//  * server admin only: creating/deleting databases, _all_dbs, _config, ...
//  * db admin (or server admin): _security writes, design document writes,
//    _compact, _view_cleanup, _purge, Mango index changes;
//  * db member (anyone when the members list is empty): everything else.
// Anonymous callers get 401, authenticated non-members 403, like CouchDB.

const Security = require('pouchdb-security');
const utils = require('express-pouchdb/lib/utils');
const {sendJSON, sendError, isPlainObject} = require('./http-util');

function userCtxOf(req) {
  const ctx = req.couchSession && req.couchSession.userCtx;
  return ctx || {name: null, roles: []};
}

function isServerAdmin(req) {
  const roles = userCtxOf(req).roles;
  return Array.isArray(roles) && roles.indexOf('_admin') !== -1;
}

function notServerAdmin(res) {
  sendJSON(res, 401, {error: 'unauthorized', reason: 'You are not a server admin.'});
}

// replaces express-pouchdb/lib/routes/authorization.js
function installAuthorization(app) {
  function requireServerAdmin(req, res, next) {
    if (isServerAdmin(req)) {
      return next();
    }
    notServerAdmin(res);
  }
  app.get('/_config', requireServerAdmin);
  app.get('/_config/:section', requireServerAdmin);
  app.all('/_config/:section/:key', requireServerAdmin);
  app.get('/_log', requireServerAdmin);
  app.get('/_active_tasks', requireServerAdmin);
  app.get('/_db_updates', requireServerAdmin);
  app.post('/_restart', requireServerAdmin);
  app.get('/_all_dbs', requireServerAdmin);
  app.put('/:db', requireServerAdmin);
  app.delete('/:db', requireServerAdmin);
}

function section(obj) {
  const s = isPlainObject(obj) ? obj : {};
  return {
    names: Array.isArray(s.names) ? s.names : [],
    roles: Array.isArray(s.roles) ? s.roles : [],
  };
}

function inSection(userCtx, sec) {
  if (userCtx.name !== null && userCtx.name !== undefined &&
      sec.names.indexOf(userCtx.name) !== -1) {
    return true;
  }
  const roles = Array.isArray(userCtx.roles) ? userCtx.roles : [];
  return sec.roles.some((role) => roles.indexOf(role) !== -1);
}

const READ_METHODS = new Set(['GET', 'HEAD']);
const ADMIN_ENDPOINTS = new Set(['_compact', '_view_cleanup', '_purge']);

// 'admin' or 'member' for a request below /:db. `rest` is the decoded path
// after the database name, split on '/'.
function requiredLevel(req, parts) {
  const method = req.method;
  const first = parts[0] || '';
  const write = !READ_METHODS.has(method);
  if (first === '_security') {
    return write ? 'admin' : 'member';
  }
  if (first === '_design' && parts.length >= 2) {
    if (parts.length >= 3 && parts[2].startsWith('_')) {
      return 'member'; // _view, _show, _list, _update, _rewrite, _info
    }
    return write ? 'admin' : 'member';
  }
  if (ADMIN_ENDPOINTS.has(first)) {
    return 'admin';
  }
  if (first === '_index' && write) {
    return 'admin';
  }
  if (method === 'COPY') {
    const dest = String(req.headers.destination || '');
    if (dest.startsWith('_design/')) {
      return 'admin';
    }
  }
  if (first === '_bulk_docs' && isPlainObject(req.body) && Array.isArray(req.body.docs)) {
    const touchesDdoc = req.body.docs.some((doc) =>
      isPlainObject(doc) && typeof doc._id === 'string' && doc._id.startsWith('_design/'));
    if (touchesDdoc) {
      return 'admin';
    }
  }
  if (parts.length === 0 && method === 'POST' && isPlainObject(req.body) &&
      typeof req.body._id === 'string' && req.body._id.startsWith('_design/')) {
    return 'admin';
  }
  return 'member';
}

function verdict(req, secObj, parts) {
  if (isServerAdmin(req)) {
    return null;
  }
  const userCtx = userCtxOf(req);
  const admins = section(secObj && secObj.admins);
  const members = section(secObj && secObj.members);
  const isDbAdmin = inSection(userCtx, admins);
  const anonymous = userCtx.name === null || userCtx.name === undefined;
  if (requiredLevel(req, parts) === 'admin') {
    if (isDbAdmin) {
      return null;
    }
    return {status: 401, body: {error: 'unauthorized', reason: 'You are not a db or server admin.'}};
  }
  const open = members.names.length === 0 && members.roles.length === 0;
  if (open || isDbAdmin || inSection(userCtx, members)) {
    return null;
  }
  if (anonymous) {
    return {status: 401, body: {error: 'unauthorized', reason: 'You are not authorized to access this db.'}};
  }
  return {status: 403, body: {error: 'forbidden', reason: 'You are not allowed to access this db.'}};
}

function splitRest(req) {
  // the decoded path after the (encoded) database name
  return req.path.split('/').filter(Boolean).slice(1).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch (err) {
      return part;
    }
  }).join('/').split('/').filter(Boolean);
}

function validSecurityObject(body) {
  if (!isPlainObject(body)) {
    return false;
  }
  for (const key of ['admins', 'members']) {
    if (body[key] === undefined) continue;
    if (!isPlainObject(body[key])) return false;
    for (const field of ['names', 'roles']) {
      const list = body[key][field];
      if (list === undefined) continue;
      if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) return false;
    }
  }
  return true;
}

// Access check for /:db and everything below it. Called by the db lookup
// (utils.setDBOnReq) once req.db is in place, i.e. before any route of the
// database (GET /db, _bulk_docs, _all_docs, _changes, documents, ...).
function checkDbAccess(req, res, next) {
  const parts = splitRest(req);
  const proceed = () => {
    req.db.getSecurity().then((secObj) => {
      req.couchSecurityObj = secObj;
      const denied = verdict(req, secObj, parts);
      if (denied) {
        return sendJSON(res, denied.status, denied.body);
      }
      next();
    }).catch((err) => sendError(res, err));
  };
  const needsBody = req.method === 'POST' && (parts[0] === '_bulk_docs' || parts.length === 0);
  if (needsBody && !isServerAdmin(req)) {
    return utils.jsonParser(req, res, proceed);
  }
  proceed();
}

// replaces express-pouchdb/lib/routes/security.js
function installSecurity(app) {
  app.daemonManager.registerDaemon({
    start(PouchDB) {
      PouchDB.plugin(Security);
      Security.installStaticSecurityMethods(PouchDB);
    },
  });
  app.dbWrapper.registerWrapper((name, db, next) => {
    db.installSecurityMethods();
    return next();
  });

  app.get('/:db/_security', (req, res) => {
    sendJSON(res, 200, req.couchSecurityObj || {});
  });

  app.put('/:db/_security', utils.jsonParser, (req, res) => {
    if (!validSecurityObject(req.body)) {
      return sendJSON(res, 400, {error: 'bad_request', reason: 'Invalid security object'});
    }
    req.db.putSecurity(req.body).then(() => {
      sendJSON(res, 200, {ok: true});
    }).catch((err) => sendError(res, err));
  });
}

module.exports = {installAuthorization, installSecurity, checkDbAccess, isServerAdmin, userCtxOf};
