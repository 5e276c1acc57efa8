'use strict';
// Document and attachment behaviour of CouchDB 3 that express-pouchdb lacks:
//  * ETag "<rev>" on documents and If-None-Match -> 304;
//  * DELETE without rev (no ?rev=, no If-Match) -> 409 conflict;
//  * If-Match accepted as the rev for PUT/DELETE of docs and attachments;
//  * PUT /db/id: the id in the URL wins over a different body _id;
//  * POST /db: 32 hex character ids like CouchDB's;
//  * attachment GET with a single Range (206 / 416), Accept-Ranges: bytes;
//  * GET /db/_design_docs.

const crypto = require('crypto');
const utils = require('express-pouchdb/lib/utils');
const {sendJSON, sendError, isPlainObject, unquoteEtag, ifNoneMatchHits} = require('./http-util');

function quoted(value) {
  return '"' + value + '"';
}

// CouchDB's uuids: 32 lowercase hex characters
function newDocId() {
  return crypto.randomBytes(16).toString('hex');
}

function newDocIds(count) {
  const ids = [];
  for (let i = 0; i < count; i++) ids.push(newDocId());
  return ids;
}

// Take the rev from If-Match when the query has none.
function revFromIfMatch(req, res, next) {
  const ifMatch = req.headers['if-match'];
  if (ifMatch && (req.query.rev === undefined || req.query.rev === '')) {
    req.query.rev = unquoteEtag(ifMatch);
  }
  next();
}

// Parse "bytes=S-E", "bytes=S-", "bytes=-N" for a body of `size` bytes.
// Returns null (ignore the header), 'unsatisfiable', or {start, end}.
function parseRange(header, size) {
  if (typeof header !== 'string') return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!m) return null; // malformed or several ranges: send everything
  const [, startText, endText] = m;
  if (startText === '' && endText === '') return null;
  let start;
  let end;
  if (startText === '') {
    const suffix = Number(endText);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(startText);
    end = endText === '' ? size - 1 : Math.min(Number(endText), size - 1);
    if (endText !== '' && Number(endText) < start) return null;
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return {start, end};
}

async function sendAttachment(req, res, docId) {
  const name = req.params.attachment;
  const getOpts = utils.makeOpts(req, {});
  if (req.query.rev !== undefined) {
    getOpts.rev = String(req.query.rev);
  }
  const doc = await req.db.get(docId, getOpts);
  const info = doc._attachments && doc._attachments[name];
  if (!info) {
    return sendJSON(res, 404, {error: 'not_found', reason: 'Document is missing attachment'});
  }
  const attOpts = utils.makeOpts(req, {});
  if (getOpts.rev) attOpts.rev = getOpts.rev;
  let data = await req.db.getAttachment(docId, name, attOpts);
  if (!Buffer.isBuffer(data)) {
    data = Buffer.from(data);
  }
  const etag = quoted(String(info.digest || '').replace(/^md5-/, ''));
  res.setHeader('ETag', etag);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'must-revalidate');
  res.setHeader('Content-Type', info.content_type || 'application/octet-stream');
  if (ifNoneMatchHits(req, etag)) {
    res.statusCode = 304;
    return res.end();
  }
  const range = req.headers.range ? parseRange(req.headers.range, data.length) : null;
  if (range === 'unsatisfiable') {
    res.removeHeader('Content-Type');
    return sendJSON(res, 416, {
      error: 'requested_range_not_satisfiable',
      reason: 'Requested range not satisfiable',
    }, {'Content-Range': 'bytes */' + data.length});
  }
  let body = data;
  if (range) {
    body = data.subarray(range.start, range.end + 1);
    res.statusCode = 206;
    res.setHeader('Content-Range', 'bytes ' + range.start + '-' + range.end + '/' + data.length);
  } else {
    res.statusCode = 200;
  }
  res.setHeader('Content-Length', body.length);
  res.end(req.method === 'HEAD' ? undefined : body);
}

// Registered in front of express-pouchdb's routes/attachments.js.
function installAttachmentRoutes(app) {
  app.use(revFromIfMatch);

  const handle = (docIdOf) => (req, res, next) => {
    const docId = docIdOf(req);
    if (docId === null) {
      return next();
    }
    sendAttachment(req, res, docId).catch((err) => sendError(res, err));
  };
  app.get('/:db/_design/:id/:attachment(*)', handle((req) => '_design/' + req.params.id));
  app.get('/:db/:id/:attachment(*)', handle((req) => {
    // leave design and local documents to the document routes
    if (req.params.id === '_design' || req.params.id === '_local') {
      return null;
    }
    return req.params.id;
  }));
}

async function sendDoc(req, res) {
  const id = req.params.id;
  const opts = utils.makeOpts(req, Object.assign({}, req.query));
  if (opts.rev !== undefined) opts.rev = String(opts.rev);
  const doc = await req.db.get(id, opts);
  if (Array.isArray(doc)) {
    // open_revs: a list of {ok: doc} / {missing: rev}
    return sendJSON(res, 200, doc);
  }
  const etag = quoted(doc._rev);
  if (ifNoneMatchHits(req, etag)) {
    res.setHeader('ETag', etag);
    res.statusCode = 304;
    return res.end();
  }
  sendJSON(res, 200, couchKeyOrder(doc), {ETag: etag});
}

// _id and _rev first, then the body, then the other special members, the
// order CouchDB writes them in.
function couchKeyOrder(doc) {
  const out = {_id: doc._id, _rev: doc._rev};
  const specials = [];
  for (const key of Object.keys(doc)) {
    if (key === '_id' || key === '_rev') continue;
    if (key.startsWith('_')) specials.push(key);
    else out[key] = doc[key];
  }
  for (const key of specials) out[key] = doc[key];
  return out;
}

// POST /db/_bulk_get with CouchDB's per-revision error objects.
function installBulkGet(app) {
  app.post('/:db/_bulk_get', utils.jsonParser, (req, res) => {
    if (!isPlainObject(req.body) || !Array.isArray(req.body.docs)) {
      return sendJSON(res, 400, {error: 'bad_request', reason: "Missing JSON list of 'docs'"});
    }
    const opts = utils.makeOpts(req, Object.assign({}, req.query, {docs: req.body.docs}));
    const askedRevs = new Map();
    for (const asked of req.body.docs) {
      if (!isPlainObject(asked)) continue;
      if (!askedRevs.has(asked.id)) askedRevs.set(asked.id, []);
      if (asked.rev !== undefined) askedRevs.get(asked.id).push(String(asked.rev));
    }
    req.db.bulkGet(opts).then((response) => {
      const results = response.results.map((item) => {
        const revs = askedRevs.get(item.id) || [];
        return {
          id: item.id,
          docs: item.docs.map((entry) => {
            if (entry && entry.ok) return {ok: entry.ok};
            const err = (entry && entry.error) || {};
            let rev = 'undefined';
            if (entry && typeof entry.missing === 'string') rev = entry.missing;
            else if (revs.length === 1) rev = revs[0];
            return {
              error: {
                id: item.id,
                rev,
                error: (typeof err.error === 'string' ? err.error : err.name) || 'not_found',
                reason: (typeof err.reason === 'string' ? err.reason : err.message) || 'missing',
              },
            };
          }),
        };
      });
      sendJSON(res, 200, {results});
    }).catch((err) => sendError(res, err));
  });
}

// DELETE /db/_index/{ddoc|_design/ddoc}/json/{name}
function installIndexDelete(app) {
  app.delete('/:db/_index/*', (req, res, next) => {
    const parts = String(req.params[0] || '').split('/').filter(Boolean);
    if (parts[0] === '_design') parts.shift();
    if (parts.length !== 3) return next();
    const [ddoc, type, name] = parts;
    const ddocId = '_design/' + ddoc;
    req.db.getIndexes().then((found) => {
      const exists = found.indexes.some((idx) => idx.ddoc === ddocId && idx.name === name &&
        idx.type === type);
      if (!exists) {
        return sendJSON(res, 404, {error: 'not_found', reason: 'Index not found'});
      }
      return req.db.deleteIndex({ddoc: ddocId, type, name}).then(() => sendJSON(res, 200, {ok: true}));
    }).catch((err) => sendError(res, err));
  });
}

// Registered in front of express-pouchdb's routes/documents.js.
function installDocumentRoutes(app) {
  app.all('/:db/_design_docs', utils.jsonParser, (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
      return next();
    }
    const query = Object.assign({}, isPlainObject(req.body) ? req.body : {}, req.query);
    const opts = utils.makeOpts(req, query);
    if (opts.keys === undefined) {
      const descending = opts.descending === true;
      const lo = opts.startkey !== undefined ? opts.startkey : opts.start_key;
      const hi = opts.endkey !== undefined ? opts.endkey : opts.end_key;
      opts.startkey = lo !== undefined ? lo : (descending ? '_design0' : '_design/');
      opts.endkey = hi !== undefined ? hi : (descending ? '_design/' : '_design0');
      delete opts.start_key;
      delete opts.end_key;
    }
    req.db.allDocs(opts).then((result) => {
      if (opts.keys === undefined) {
        result.rows = result.rows.filter((row) => String(row.id).startsWith('_design/'));
      }
      sendJSON(res, 200, result);
    }).catch((err) => sendError(res, err, 400));
  });

  app.get('/:db/:id(*)', (req, res) => {
    sendDoc(req, res).catch((err) => sendError(res, err));
  });

  app.put('/:db/:id(*)', utils.jsonParser, (req, res, next) => {
    if (/^multipart\/related/i.test(req.headers['content-type'] || '')) {
      return next();
    }
    if (!isPlainObject(req.body)) {
      return sendJSON(res, 400, {error: 'bad_request', reason: 'Document must be a JSON object'});
    }
    req.body._id = req.params.id;
    next();
  });

  app.post('/:db', utils.jsonParser, (req, res, next) => {
    if (!isPlainObject(req.body)) {
      return sendJSON(res, 400, {error: 'bad_request', reason: 'Document must be a JSON object'});
    }
    if (req.body._id === undefined) {
      req.body._id = newDocId();
    }
    next();
  });

  app.delete('/:db/:id(*)', (req, res, next) => {
    if (req.query.rev === undefined || req.query.rev === '') {
      return sendJSON(res, 409, {error: 'conflict', reason: 'Document update conflict.'});
    }
    req.query.rev = String(req.query.rev);
    next();
  });
}

module.exports = {
  newDocIds,
  installAttachmentRoutes, installDocumentRoutes, installBulkGet, installIndexDelete, parseRange,
};
