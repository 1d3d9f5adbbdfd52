'use strict';
// Queue configuration: a JSON file declaring the queues, in the property
// names and ISO 8601 durations Azure uses for queue properties.

const fs = require('fs');

const DEFAULTS = {
  lockDuration: 'PT1M',
  maxDeliveryCount: 10,
  defaultMessageTimeToLive: null, // unlimited
  deadLetteringOnMessageExpiration: false,
};

const QUEUE_KEYS = new Set(['name', ...Object.keys(DEFAULTS)]);

class ConfigError extends Error {}

// parseDuration reads an ISO 8601 duration (PnDTnHnMnS, as Azure shows queue
// durations) and returns milliseconds, or throws.
function parseDuration(s) {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(s);
  if (!m || s === 'P' || s.endsWith('T')) throw new Error('not an ISO 8601 duration');
  const [, d, h, min, sec] = m;
  return (((Number(d || 0) * 24 + Number(h || 0)) * 60 + Number(min || 0)) * 60 + Number(sec || 0)) * 1000;
}

// load reads and validates the config file; every problem is reported with
// the file name and the JSON path of the offending field.
function load(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`config ${file}: cannot read: ${e.message}`);
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config ${file}: not valid JSON: ${e.message}`);
  }
  const fail = (where, msg) => { throw new ConfigError(`config ${file}: ${where}: ${msg}`); };
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) fail('top level', 'must be an object like {"queues": [...]}');
  for (const k of Object.keys(doc)) {
    if (k !== 'queues') fail(k, 'unknown key (the file holds only "queues")');
  }
  if (!Array.isArray(doc.queues) || doc.queues.length === 0) fail('queues', 'must be a non-empty array of queue objects');
  const seen = new Map();
  const queues = doc.queues.map((q, i) => {
    const at = `queues[${i}]`;
    if (!q || typeof q !== 'object' || Array.isArray(q)) fail(at, 'must be an object with at least "name"');
    for (const k of Object.keys(q)) {
      if (!QUEUE_KEYS.has(k)) fail(`${at}.${k}`, `unknown key; allowed: ${[...QUEUE_KEYS].join(', ')}`);
    }
    if (typeof q.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/.test(q.name)) {
      fail(`${at}.name`, 'must be a queue name: letters, digits, ".", "_", "-", starting with a letter or digit');
    }
    const key = q.name.toLowerCase();
    if (seen.has(key)) fail(`${at}.name`, `"${q.name}" is already declared at queues[${seen.get(key)}] (names are case-insensitive)`);
    seen.set(key, i);
    const v = { ...DEFAULTS, ...q };
    const dur = (field, min) => {
      if (v[field] === null) return Infinity;
      if (typeof v[field] !== 'string') fail(`${at}.${field}`, `must be an ISO 8601 duration string such as "PT30S"`);
      let ms;
      try {
        ms = parseDuration(v[field]);
      } catch {
        fail(`${at}.${field}`, `${JSON.stringify(v[field])} is not an ISO 8601 duration (write e.g. "PT30S", "PT5M", "P14D")`);
      }
      if (ms < min) fail(`${at}.${field}`, `${JSON.stringify(v[field])} is below the minimum of ${min / 1000}s`);
      return ms;
    };
    const lockMs = dur('lockDuration', 1000);
    if (lockMs === Infinity || lockMs > 5 * 60 * 1000) fail(`${at}.lockDuration`, 'must be at most PT5M, as in Azure');
    const ttlMs = dur('defaultMessageTimeToLive', 1000);
    if (!Number.isInteger(v.maxDeliveryCount) || v.maxDeliveryCount < 1) {
      fail(`${at}.maxDeliveryCount`, 'must be an integer of at least 1');
    }
    if (typeof v.deadLetteringOnMessageExpiration !== 'boolean') {
      fail(`${at}.deadLetteringOnMessageExpiration`, 'must be true or false');
    }
    return {
      name: q.name,
      lockDurationMs: lockMs,
      maxDeliveryCount: v.maxDeliveryCount,
      ttlMs,
      deadLetteringOnMessageExpiration: v.deadLetteringOnMessageExpiration,
    };
  });
  return { queues };
}

module.exports = { load, parseDuration, ConfigError };
