// Reads GET /jobs off the page's main thread: parsing the list of 10,000 jobs (about 35 MB of JSON) takes seconds,
// and the page must stay responsive meanwhile. Answers the rows the table shows, not the Jobs.

import { jobRow } from "./model.js";

self.onmessage = async (event) => {
  const { id, url, headers } = event.data;
  try {
    const response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (err) { body = { message: `HTTP ${response.status}` }; }
      self.postMessage({ id, error: { status: response.status, body } });
      return;
    }
    const body = await response.json();
    self.postMessage({ id, rows: (body.jobs || []).map(jobRow), truncated: Boolean(body.truncated) });
  } catch (err) {
    self.postMessage({ id, error: { status: 0, body: { message: String(err && err.message) } } });
  }
};
