'use strict';
// Request parsing as CouchDB 3 does it, where express-pouchdb is lenient:
//  * request bodies: a PUT body is JSON whatever its Content-Type (CouchDB
//    never looks at it there), while a POST to a database endpoint without
//    `Content-Type: application/json` gets 415 bad_content_type;
//  * view and _all_docs query parameters (couch_mrview_http:parse_params):
//    keys must be JSON (400 bad_request "invalid UTF-8 JSON"), booleans must
//    be `true`/`false`, counts must be non-negative integers, `stale`,
//    `update` and `stable` take only their documented values, and grouping
//    without a reduce (reduce=false, a map-only view, _all_docs) or reducing
//    a map-only view is refused; all 400 query_parse_error.
// express-pouchdb instead JSON-parses every parameter it can and passes the
// rest on as strings, so `startkey=a2` used to be read as the string "a2".

const bodyParser = require('body-parser');
const utils = require('express-pouchdb/lib/utils');
const {sendJSON, isPlainObject} = require('./http-util');

const JSON_TYPE = 'application/json';

// POSTs that CouchDB answers without checking the Content-Type.
const LENIENT_POSTS = [
  /^\/_session$/, // also takes application/x-www-form-urlencoded
  /^\/[^/]+\/_view_cleanup$/,
  /^\/[^/]+\/_all_docs\/queries$/,
];

function mediaType(req) {
  return String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
}

function postNeedsJsonType(req) {
  const path = utils.rawPath(req).split('?')[0];
  if (LENIENT_POSTS.some((re) => re.test(path))) return false;
  // POST /db/docid is the multipart/form-data attachment upload
  const parts = path.split('/').filter(Boolean);
  return !(parts.length === 2 && !parts[1].startsWith('_'));
}

// Replacement for express-pouchdb's utils.jsonParser (same errors: 400
// invalid_json, 413 too_large).
function createJsonParser() {
  const parsers = new Map();
  function parserFor(limit, anyType) {
    const key = limit + ':' + anyType;
    if (!parsers.has(key)) {
      parsers.set(key, bodyParser.json(anyType ? {limit, type: () => true} : {limit}));
    }
    return parsers.get(key);
  }
  return function jsonParser(req, res, next) {
    if (req._body) return next(); // parsed already by an earlier middleware
    const type = mediaType(req);
    if (type.startsWith('multipart/')) return next(); // the route reads it itself
    if (req.method === 'POST' && type !== JSON_TYPE && postNeedsJsonType(req)) {
      return sendJSON(res, 415, {error: 'bad_content_type', reason: 'Content-Type must be application/json'});
    }
    const limit = req.app.couchConfig ?
      req.app.couchConfig.get('couchdb', 'max_document_size') : utils.maxDocumentSizeDefault;
    parserFor(limit, req.method === 'PUT')(req, res, (err) => {
      if (!err) return next();
      if (err.status === 400) return sendJSON(res, 400, {error: 'bad_request', reason: 'invalid_json'});
      if (err.status === 413) {
        return sendJSON(res, 413, {error: 'too_large', reason: 'the request entity is too large'});
      }
      return utils.sendError(res, err, 500);
    });
  };
}

// ------------------------------------------------------- query parameters

const JSON_PARAMS = new Set(['key', 'keys', 'startkey', 'start_key', 'endkey', 'end_key']);
const BOOLEAN_PARAMS = new Set([
  'descending', 'include_docs', 'inclusive_end', 'reduce', 'group', 'update_seq', 'conflicts',
  'sorted', 'attachments', 'att_encoding_info', 'local_seq',
]);
const COUNT_PARAMS = new Set(['limit', 'skip', 'group_level']);
const CHOICES = {
  stale: ['ok', 'update_after', 'false'],
  update: ['true', 'false', 'lazy'],
  stable: ['true', 'false'],
};

function queryParseError(reason) {
  return {status: 400, body: {error: 'query_parse_error', reason}};
}

function checkCount(name, value) {
  if (!/^[+-]?\d+$/.test(value)) return queryParseError('Invalid value for integer: ' + JSON.stringify(value));
  if (Number(value) < 0) return queryParseError('Invalid value for positive integer: ' + JSON.stringify(value));
  return null;
}

// The first CouchDB error for these query parameters, or null.
function checkQuery(search, isView) {
  for (const [name, value] of search) {
    if (JSON_PARAMS.has(name)) {
      let parsed;
      try {
        parsed = JSON.parse(value);
      } catch (e) {
        return {status: 400, body: {error: 'bad_request', reason: 'invalid UTF-8 JSON'}};
      }
      if (name === 'keys' && !Array.isArray(parsed)) {
        return isView ?
          queryParseError('`keys` must be an array of strings.') :
          {status: 400, body: {error: 'bad_request', reason: '`keys` parameter must be an array.'}};
      }
    } else if (BOOLEAN_PARAMS.has(name)) {
      if (value !== 'true' && value !== 'false') {
        return queryParseError('Invalid boolean parameter: ' + JSON.stringify(value));
      }
    } else if (COUNT_PARAMS.has(name)) {
      const bad = checkCount(name, value);
      if (bad) return bad;
    } else if (Object.prototype.hasOwnProperty.call(CHOICES, name)) {
      if (!CHOICES[name].includes(value)) return queryParseError('Invalid value for `' + name + '`.');
    }
  }
  return null;
}

// The same rules for the members of a POST body (already JSON).
function checkBody(body, isView) {
  if (body.keys !== undefined && !Array.isArray(body.keys)) {
    const member = isView ? '`keys` member' : '`keys` body member';
    return {status: 400, body: {error: 'bad_request', reason: member + ' must be an array.'}};
  }
  for (const [name, value] of Object.entries(body)) {
    if (BOOLEAN_PARAMS.has(name) && typeof value !== 'boolean') {
      return queryParseError('Invalid boolean parameter: ' + JSON.stringify(String(value)));
    }
    if (COUNT_PARAMS.has(name) && !(Number.isInteger(value) && value >= 0)) {
      return queryParseError('Invalid value for integer: ' + JSON.stringify(JSON.stringify(value)));
    }
  }
  return null;
}

function isTrue(value) {
  return value === true || value === 'true';
}

// `hasReduce`: whether the view has a reduce function (false for _all_docs).
function checkGrouping(options, hasReduce) {
  const grouping = isTrue(options.group) || options.group_level !== undefined;
  const reducing = hasReduce && !(options.reduce === false || options.reduce === 'false');
  if (grouping && !reducing) return queryParseError('Invalid use of grouping on a map view.');
  if (!hasReduce && isTrue(options.reduce)) {
    return queryParseError('Reduce is invalid for map-only views.');
  }
  return null;
}

// Whether the view named in the URL has a reduce; a missing design document
// or view is left to the route, which answers 404.
async function viewHasReduce(req) {
  if (!req.db) return null;
  let ddoc;
  try {
    ddoc = await req.db.get('_design/' + req.params.id);
  } catch (e) {
    return null;
  }
  const view = isPlainObject(ddoc.views) ? ddoc.views[req.params.view] : undefined;
  if (!isPlainObject(view)) return null;
  return typeof view.reduce === 'string' && view.reduce.trim() !== '';
}

function queryChecks(isView) {
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') return next();
    const search = new URL(req.originalUrl, 'http://localhost').searchParams;
    const fromQuery = checkQuery(search, isView);
    if (fromQuery) return sendJSON(res, fromQuery.status, fromQuery.body);
    const finish = async () => {
      const body = isPlainObject(req.body) ? req.body : {};
      let bad = req.method === 'POST' ? checkBody(body, isView) : null;
      if (!bad) {
        const hasReduce = isView ? await viewHasReduce(req) : false;
        if (hasReduce !== null) bad = checkGrouping(Object.assign({}, body, Object.fromEntries(search)), hasReduce);
      }
      if (bad) return sendJSON(res, bad.status, bad.body);
      next();
    };
    const proceed = () => finish().catch(next);
    if (req.method === 'POST') return utils.jsonParser(req, res, proceed);
    proceed();
  };
}

// Registered in front of express-pouchdb's routes/all-docs.js (and so in
// front of the _design_docs route, which comes with routes/documents.js).
function installAllDocsChecks(app) {
  app.all('/:db/_all_docs', queryChecks(false));
  app.all('/:db/_design_docs', queryChecks(false));
}

// GET /_all_dbs takes the same key and paging parameters.
function installAllDbsChecks(app) {
  app.get('/_all_dbs', queryChecks(false));
}

// Registered in front of express-pouchdb's routes/views.js.
function installViewChecks(app) {
  app.all('/:db/_design/:id/_view/:view', queryChecks(true));
}

module.exports = {createJsonParser, installAllDbsChecks, installAllDocsChecks, installViewChecks};
