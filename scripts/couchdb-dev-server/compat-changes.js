'use strict';
// GET/POST /db/_changes with CouchDB 3 semantics for the feed types:
//  * normal: one JSON object;
//  * longpoll: waits for the first change, or answers
//    {"results":[],"last_seq":...} when `timeout` (default 60 s) passes;
//  * continuous: one JSON line per change, newline heartbeats when asked,
//    a final {"last_seq":...} line on timeout or limit.
// Also: filter=_selector (selector in the body), filter=_design,
// filter=_doc_ids with ids in the body or the query.

const utils = require('express-pouchdb/lib/utils');
const {sendJSON, sendError, isPlainObject} = require('./http-util');

const DEFAULT_TIMEOUT_MS = 60000;
const DEFAULT_HEARTBEAT_MS = 60000;

const PASSED_OPTIONS = [
  'since', 'limit', 'include_docs', 'conflicts', 'attachments', 'att_encoding_info',
  'style', 'descending', 'filter', 'view', 'doc_ids', 'selector', 'return_docs',
];

function badRequest(res, reason) {
  sendJSON(res, 400, {error: 'bad_request', reason});
}

function buildOptions(req) {
  const q = req.query;
  const body = isPlainObject(req.body) ? req.body : {};
  const opts = utils.makeOpts(req, {});
  for (const key of PASSED_OPTIONS) {
    if (q[key] !== undefined) opts[key] = q[key];
  }
  // express-pouchdb JSON-parsed every query value; filters want strings
  const rawQuery = {};
  for (const [key, value] of Object.entries(q)) {
    rawQuery[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  opts.query_params = rawQuery;
  if (opts.since === undefined) opts.since = 0;
  if (opts.limit !== undefined && !(Number(opts.limit) >= 1)) opts.limit = 1;

  const filter = opts.filter;
  if (filter === '_doc_ids') {
    const ids = body.doc_ids !== undefined ? body.doc_ids : opts.doc_ids;
    if (!Array.isArray(ids)) {
      return {error: 'filter=_doc_ids needs a JSON list of "doc_ids"'};
    }
    opts.doc_ids = ids;
  } else if (filter === '_selector') {
    const selector = body.selector !== undefined ? body.selector : opts.selector;
    if (!isPlainObject(selector)) {
      return {error: 'Selector must be specified in POST payload'};
    }
    delete opts.filter;
    opts.selector = selector;
  } else if (filter === '_design') {
    opts.filter = (doc) => typeof doc._id === 'string' && doc._id.startsWith('_design/');
  } else if (filter === '_view') {
    if (typeof opts.view !== 'string') {
      return {error: '`view` filter parameter is not provided.'};
    }
  }
  if (opts.doc_ids !== undefined && filter !== '_doc_ids') {
    delete opts.doc_ids;
  }
  return {opts};
}

function timing(query) {
  let heartbeat = null;
  if (query.heartbeat === true) {
    heartbeat = DEFAULT_HEARTBEAT_MS;
  } else if (typeof query.heartbeat === 'number' && query.heartbeat > 0) {
    heartbeat = Math.max(query.heartbeat, 100);
  }
  let timeout = DEFAULT_TIMEOUT_MS;
  if (typeof query.timeout === 'number' && query.timeout >= 0) {
    timeout = query.timeout;
  }
  return {heartbeat, timeout};
}

function startStreaming(res) {
  if (!res.headersSent) {
    res.statusCode = 200;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'must-revalidate');
    res.flushHeaders();
  }
}

async function resolveSince(db, since) {
  if (since === 'now') {
    const info = await db.info();
    return info.update_seq;
  }
  return since;
}

function normalFeed(req, res, opts) {
  return req.db.changes(opts).then((result) => {
    sendJSON(res, 200, {results: result.results, last_seq: result.last_seq});
  });
}

async function longpollFeed(req, res, opts) {
  const {heartbeat, timeout} = timing(req.query);
  const first = await req.db.changes(Object.assign({}, opts, {live: false}));
  if (first.results.length > 0) {
    return sendJSON(res, 200, {results: first.results, last_seq: first.last_seq});
  }
  const since = first.last_seq !== undefined ? first.last_seq : await resolveSince(req.db, opts.since);
  await new Promise((resolve) => {
    let finished = false;
    let feed = null;
    let beat = null;
    let timer = null;
    const finish = (body, err) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (beat) clearInterval(beat);
      if (feed) feed.cancel();
      res.removeListener('close', onClose);
      if (body === null && err === null) {
        // the client went away
      } else if (err) {
        if (res.headersSent) res.end();
        else sendError(res, err);
      } else if (res.headersSent) {
        res.end(JSON.stringify(body) + '\n');
      } else {
        sendJSON(res, 200, body);
      }
      resolve();
    };
    const onClose = () => finish(null, null);
    res.on('close', onClose);
    if (heartbeat) {
      beat = setInterval(() => {
        startStreaming(res);
        res.write('\n');
      }, heartbeat);
    } else {
      timer = setTimeout(() => finish({results: [], last_seq: since}), timeout);
    }
    const liveOpts = Object.assign({}, opts, {since, live: true, return_docs: false});
    delete liveOpts.limit;
    delete liveOpts.descending;
    feed = req.db.changes(liveOpts);
    feed.on('change', (change) => finish({results: [change], last_seq: change.seq}));
    feed.on('error', (err) => finish(null, err));
  });
}

async function continuousFeed(req, res, opts) {
  const {heartbeat, timeout} = timing(req.query);
  const limit = opts.limit !== undefined ? Number(opts.limit) : null;
  let lastSeq = await resolveSince(req.db, opts.since);
  startStreaming(res);
  await new Promise((resolve) => {
    let finished = false;
    let sent = 0;
    let feed = null;
    let beat = null;
    let timer = null;
    const finish = (writeTail) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (beat) clearInterval(beat);
      if (feed) feed.cancel();
      res.removeListener('close', onClose);
      if (!res.writableEnded) {
        res.end(writeTail ? JSON.stringify({last_seq: lastSeq, pending: 0}) + '\n' : undefined);
      }
      resolve();
    };
    const armTimer = () => {
      if (heartbeat) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(true), timeout);
    };
    const onClose = () => finish(false);
    res.on('close', onClose);
    if (heartbeat) {
      beat = setInterval(() => res.write('\n'), heartbeat);
    }
    armTimer();
    const liveOpts = Object.assign({}, opts, {since: lastSeq, live: true, return_docs: false});
    delete liveOpts.limit;
    delete liveOpts.descending;
    feed = req.db.changes(liveOpts);
    feed.on('change', (change) => {
      if (finished) return;
      res.write(JSON.stringify(change) + '\n');
      lastSeq = change.seq;
      sent += 1;
      if (limit !== null && sent >= limit) {
        finish(true);
      } else {
        armTimer();
      }
    });
    feed.on('error', (err) => {
      req.app.couchLogger && req.app.couchLogger.error('changes feed failed: ' + (err && err.message));
      finish(false);
    });
  });
}

// replaces express-pouchdb/lib/routes/changes.js
function installChanges(app) {
  const handler = (req, res) => {
    const built = buildOptions(req);
    if (built.error) {
      return badRequest(res, built.error);
    }
    const opts = built.opts;
    const feed = req.query.feed || 'normal';
    let work;
    if (feed === 'longpoll') {
      work = longpollFeed(req, res, opts);
    } else if (feed === 'continuous') {
      work = continuousFeed(req, res, opts);
    } else if (feed === 'normal') {
      work = normalFeed(req, res, opts);
    } else {
      return badRequest(res, 'Supported `feed` types: normal, continuous, longpoll');
    }
    work.catch((err) => {
      if (res.headersSent) {
        if (!res.writableEnded) res.end();
      } else {
        sendError(res, err);
      }
    });
  };
  app.get('/:db/_changes', handler);
  app.post('/:db/_changes', utils.jsonParser, handler);
}

module.exports = {installChanges};
