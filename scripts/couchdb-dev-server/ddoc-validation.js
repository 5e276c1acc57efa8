'use strict';
// Design document checks CouchDB 3 performs when a design document is
// saved: field types, a map function per view, JavaScript that compiles
// to a function, and known builtin reduce names. PouchDB performs none of
// them and only fails (silently) when the view is queried.

const vm = require('vm');

const BUILTIN_REDUCE_PREFIXES = ['_sum', '_count', '_stats', '_approx_count_distinct'];

class DesignDocError extends Error {
  constructor(name, reason) {
    super(reason);
    this.name = name;
    this.status = 400;
    this.reason = reason;
  }
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(reason) {
  return new DesignDocError('invalid_design_doc', reason);
}

// Returns the error message if `source` does not evaluate to a function.
function compileProblem(source) {
  let script;
  try {
    script = new vm.Script('(' + source + '\n)', {filename: 'design_doc_function'});
  } catch (err) {
    return err && err.message ? err.message : String(err);
  }
  let value;
  try {
    // Only code that never finishes should fail here, not a busy machine: CouchDB's own limit for a query
    // server call is [couchdb] os_process_timeout, 5000 ms.
    value = script.runInNewContext(Object.create(null), {timeout: 5000});
  } catch (err) {
    return err && err.message ? err.message : String(err);
  }
  if (typeof value !== 'function') {
    return 'Expression does not eval to a function. (' + source + ')';
  }
  return null;
}

// Returns null when the document is acceptable, else a DesignDocError.
function checkDesignDoc(doc) {
  if (!isObject(doc) || typeof doc._id !== 'string' || !doc._id.startsWith('_design/')) {
    return null;
  }
  if (doc._deleted === true) {
    return null;
  }
  if (doc.language !== undefined && typeof doc.language !== 'string') {
    return invalid('`language` field must have string type');
  }
  const language = doc.language === undefined ? 'javascript' : doc.language;
  const mapType = language === 'query' ? 'object' : 'string';
  for (const field of ['filters', 'lists', 'shows', 'updates']) {
    if (doc[field] !== undefined && !isObject(doc[field])) {
      return invalid('`' + field + '` field must have object type');
    }
  }
  if (doc.options !== undefined && !isObject(doc.options)) {
    return invalid('`options` field must have object type');
  }
  if (doc.validate_doc_update !== undefined && typeof doc.validate_doc_update !== 'string') {
    return invalid('`validate_doc_update` field must have string type');
  }
  if (doc.views === undefined) {
    return null;
  }
  if (!isObject(doc.views)) {
    return invalid('`views` field must have object type');
  }
  for (const [viewName, view] of Object.entries(doc.views)) {
    if (viewName === 'lib') {
      if (!isObject(view)) {
        return invalid('`views.lib` field must have object type');
      }
      continue;
    }
    if (!isObject(view)) {
      return invalid('`views.' + viewName + '` field must have object type');
    }
    if (view.map === undefined) {
      return invalid('View `' + viewName + '` must contain map function');
    }
    if (mapType === 'string' ? typeof view.map !== 'string' : !isObject(view.map)) {
      return invalid('`views.' + viewName + '.map` field must have ' + mapType + ' type');
    }
    if (view.reduce !== undefined && typeof view.reduce !== 'string') {
      return invalid('`views.' + viewName + '.reduce` field must have string type');
    }
    if (language !== 'javascript') {
      // CouchDB lets unknown languages through; "query" is Mango.
      continue;
    }
    const mapProblem = compileProblem(view.map);
    if (mapProblem) {
      return new DesignDocError('compilation_error',
        "Compilation of the map function in the '" + viewName + "' view failed: " + mapProblem);
    }
    if (typeof view.reduce === 'string') {
      const reduce = view.reduce.trim();
      if (reduce.startsWith('_')) {
        if (!BUILTIN_REDUCE_PREFIXES.some((prefix) => reduce.startsWith(prefix))) {
          return invalid('`' + reduce + '` is not a supported reduce function.');
        }
      } else {
        const reduceProblem = compileProblem(view.reduce);
        if (reduceProblem) {
          return new DesignDocError('compilation_error',
            "Compilation of the reduce function in the '" + viewName + "' view failed: " +
            reduceProblem);
        }
      }
    }
  }
  return null;
}

// Per-document error entry in the form PouchDB's bulkDocs() uses.
function asBulkResult(doc, err) {
  const entry = new DesignDocError(err.name, err.reason);
  entry.error = true;
  entry.id = doc._id;
  return entry;
}

// pouchdb-wrappers handler for db.bulkDocs(): invalid design documents are
// answered with a per-document error and never reach the database. (db.put
// goes through bulkDocs as well, so single PUTs get the error as a 400.)
function bulkDocsHandler(original, args) {
  const docs = Array.isArray(args.docs) ? args.docs : [];
  const problems = new Map();
  docs.forEach((doc, index) => {
    const err = checkDesignDoc(doc);
    if (err) {
      problems.set(index, asBulkResult(doc, err));
    }
  });
  if (problems.size === 0) {
    return original();
  }
  args.docs = docs.filter((_, index) => !problems.has(index));
  const replicated = args.options && args.options.new_edits === false;
  return Promise.resolve(args.docs.length ? original() : []).then((results) => {
    if (replicated) {
      // new_edits=false only reports failures
      return results.concat(Array.from(problems.values()));
    }
    const merged = [];
    let next = 0;
    for (let i = 0; i < docs.length; i++) {
      merged.push(problems.has(i) ? problems.get(i) : results[next++]);
    }
    return merged;
  });
}

module.exports = {checkDesignDoc, bulkDocsHandler, compileProblem};
