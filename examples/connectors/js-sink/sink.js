// A sink that POSTs each batch of events as a JSON array to an HTTP endpoint with `fetch`.
//
// busbar calls describe() once, validates the pipeline's config against the schema it returns, calls
// open(config), then write(batch) with one outcome expected per event, and close(). `fetch` goes through the
// standard wasi:http interface, and busbar lets it reach only the hosts the pipeline grants.

const CONFIG_SCHEMA = {
  type: 'object',
  properties: {
    url: { type: 'string', pattern: '^https?://' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
  },
  required: ['url'],
  additionalProperties: false,
};

let config = null;
const decoder = new TextDecoder();

function toJson(event) {
  const text = decoder.decode(event.payload);
  let detail;
  try {
    detail = JSON.parse(text);
  } catch {
    detail = text;
  }
  return { id: event.id, source: event.source, 'detail-type': event.detailType, time: event.time, detail };
}

export const sinkConnector = {
  describe() {
    return {
      name: 'js-http-sink',
      version: '0.1.0',
      kind: 'sink',
      summary: 'POSTs each batch of events as a JSON array to an HTTP endpoint',
      configSchema: JSON.stringify(CONFIG_SCHEMA),
      needs: ['http'],
    };
  },

  open(configJson) {
    const parsed = JSON.parse(configJson);
    if (!parsed.url) {
      throw { message: 'config.url is required', retryable: false };
    }
    config = parsed;
  },

  async write(batch) {
    if (batch.length === 0) {
      return [];
    }
    let outcome;
    try {
      const response = await fetch(config.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(config.headers ?? {}) },
        body: JSON.stringify(batch.map(toJson)),
      });
      await response.text();
      if (response.ok) {
        outcome = { tag: 'ok' };
      } else if (response.status === 429 || response.status >= 500) {
        outcome = { tag: 'retryable', val: `${config.url} answered ${response.status}` };
      } else {
        outcome = { tag: 'fatal', val: `${config.url} answered ${response.status}` };
      }
    } catch (e) {
      // Network errors (and hosts busbar did not grant) may clear up; let busbar retry and dead-letter.
      outcome = { tag: 'retryable', val: `POST ${config.url} failed: ${e}` };
    }
    return batch.map(() => outcome);
  },

  close() {
    config = null;
  },
};
