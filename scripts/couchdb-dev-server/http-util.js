'use strict';
// Reply helpers shared by every compat module. They only use the plain
// node ServerResponse API, so they also work outside express (watchdog,
// crash handlers).

const JSON_TYPE = 'application/json';

function sendJSON(res, status, body, extraHeaders) {
  if (res.headersSent) {
    // Too late for a status line: the best we can do is finish the reply.
    if (!res.writableEnded) {
      res.end();
    }
    return;
  }
  const payload = Buffer.from(JSON.stringify(body) + '\n', 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', JSON_TYPE);
  res.setHeader('Cache-Control', 'must-revalidate');
  res.setHeader('Content-Length', payload.length);
  if (extraHeaders) {
    for (const [name, value] of Object.entries(extraHeaders)) {
      res.setHeader(name, value);
    }
  }
  const isHead = res.req && res.req.method === 'HEAD';
  res.end(isHead ? undefined : payload);
}

const GENERIC_JS_ERRORS = new Set([
  'Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError'
]);

// Turn anything PouchDB / express-pouchdb / our code throws into the
// CouchDB {error, reason} shape plus an HTTP status.
function describeError(err, baseStatus) {
  if (err === null || err === undefined) {
    return {status: baseStatus || 500, body: {error: 'unknown_error', reason: 'unknown'}};
  }
  if (typeof err !== 'object') {
    return {status: baseStatus || 500, body: {error: 'unknown_error', reason: String(err)}};
  }
  let status = Number(err.status || err.statusCode) || baseStatus || 500;
  let error;
  let reason;
  if (typeof err.error === 'string') {
    // already a CouchDB-style body ({error, reason})
    error = err.error;
    reason = err.reason !== undefined ? err.reason : err.message;
  } else {
    error = err.name;
    // PouchError keeps the specific reason (e.g. "deleted") in .reason
    // and the generic text in .message.
    reason = typeof err.reason === 'string' ? err.reason : err.message;
  }
  if (!error || GENERIC_JS_ERRORS.has(error)) {
    if (typeof reason === 'string' && reason.indexOf('Bad special document member') !== -1) {
      error = 'doc_validation';
      status = 400;
    } else {
      error = status >= 500 ? 'unknown_error' : 'bad_request';
    }
  }
  if (error === 'doc_validation') {
    status = 400;
    // PouchDB: message "Bad special document member", reason "_foo"
    if (typeof err.message === 'string' && typeof reason === 'string') {
      if (err.message.indexOf(reason) !== -1) {
        reason = err.message;
      } else if (reason.indexOf(err.message) === -1) {
        reason = err.message + ': ' + reason;
      }
    }
  }
  if (reason === 'Document update conflict') {
    reason = 'Document update conflict.';
  }
  // PouchDB's words for what CouchDB says in its own
  if (status === 404 && typeof reason === 'string' && /^ddoc \S+ has no view named /.test(reason)) {
    reason = 'missing_named_view';
  }
  if (error === 'query_parse_error' && reason === '{include_docs:true} is invalid for reduce') {
    reason = '`include_docs` is invalid for reduce';
  }
  if (reason === undefined || reason === null) {
    reason = '';
  }
  return {status, body: {error: String(error), reason}};
}

function sendError(res, err, baseStatus) {
  const {status, body} = describeError(err, baseStatus);
  sendJSON(res, status, body);
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) &&
    !Buffer.isBuffer(value);
}

// "W/\"1-abc\"" / "\"1-abc\"" / "1-abc" -> "1-abc"
function unquoteEtag(value) {
  let v = String(value).trim();
  if (v.startsWith('W/')) {
    v = v.slice(2);
  }
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    v = v.slice(1, -1);
  }
  return v;
}

function ifNoneMatchHits(req, etag) {
  const header = req.headers['if-none-match'];
  if (!header) {
    return false;
  }
  if (header.trim() === '*') {
    return true;
  }
  const wanted = unquoteEtag(etag);
  return header.split(',').some((part) => unquoteEtag(part) === wanted);
}

module.exports = {
  sendJSON,
  sendError,
  describeError,
  isPlainObject,
  unquoteEtag,
  ifNoneMatchHits,
};
