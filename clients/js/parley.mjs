// Parley's streaming protocol (version 1, docs/protocol.md) for JavaScript apps: browsers, and Node with a WebSocket
// (Node >= 22 has one; older Node: pass `WebSocket` from the `ws` package). No dependencies, no build step; the server
// serves this file at /sdk/parley.mjs, and clients/js/parley.d.ts types it.
//
//   import { ParleyStream } from "/sdk/parley.mjs";
//   const stream = await ParleyStream.open("wss://asr.example.org/v1/stream", {
//     apiKey: "KEY",
//     start: { sample_rate: 16000, model: "en-open", hotwords: ["kowalczyk"] },   // start's fields, as documented
//     onPartial: (p) => draw(p.text, p.stable),
//     onFinal: (f) => append(f.display ?? f.text),
//   });
//   stream.send(float32Samples);            // Float32Array in [-1, 1], Int16Array, or the encoding's bytes
//   const final = await stream.finalize();  // the open segment's final now ("finalized": true); the stream goes on
//   stream.context({ hotwords: ["mcallister"] });
//   const finals = await stream.stop();     // every final, then the server's end
//
// Resumable (PCM encodings; on by default): when the server drains for a restart, is full, or the connection drops,
// the stream is opened again after a pause (0.25 s doubling to 8 s) and sent the audio from the last final's end,
// which the client keeps (at most `maxBacklogSeconds`); results stay on the source's clock (times from its first
// sample, segments numbered on), as if one stream had heard it all. The same as clients/resume.py for Python.

export const PROTOCOL_VERSION = 1;
// Errors after which a stream is opened again: the rest (unauthorized, unknown_model, ...) would only repeat.
export const RETRYABLE = new Set(["shutting_down", "server_full", "too_many_streams", "connect_failed", "closed"]);
export const BYTES_PER_SAMPLE = { s16le: 2, f32le: 4, mulaw: 1, alaw: 1 };
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 8000;
const EARLY_MS = 30000; // openMicrophone: the most audio held while the connection opens (the oldest goes)

/** An error the server sent (its `code` and `message`, docs/protocol.md#error), or "connect_failed" / "closed". */
export class ParleyError extends Error {
  constructor(code, message, closeCode = null) {
    super(`${code}: ${message}`);
    this.name = "ParleyError";
    this.code = code;
    this.closeCode = closeCode;
  }
}

/** Float samples in [-1, 1] as 16-bit integers (s16le), clipped. */
export function floatToS16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.max(-1, Math.min(1, samples[i]));
    out[i] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
  }
  return out;
}

function withKey(url, apiKey) {
  if (!apiKey) return url;
  const u = new URL(url);
  u.searchParams.set("api_key", apiKey);
  return u.toString();
}

export class ParleyStream {
  /**
   * Connects, sends the start message and waits for ready.
   * @returns {Promise<ParleyStream>} rejects with a ParleyError when the server refuses the start.
   */
  static async open(url, options = {}) {
    const stream = new ParleyStream(url, options);
    await stream._connect();
    return stream;
  }

  constructor(url, options = {}) {
    const start = { sample_rate: 16000, encoding: "s16le", ...(options.start || {}) };
    this.url = withKey(url, options.apiKey);
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new Error("no WebSocket: pass options.WebSocket (Node < 22: the ws package's)");
    this.width = BYTES_PER_SAMPLE[start.encoding] || 0; // 0: a container (webm, ogg, mp4): bytes as they come
    if (!this.width) delete start.sample_rate;
    this.startMessage = { type: "start", ...start };
    this.rate = start.sample_rate || 0;
    this.channels = start.channels || 1;
    this.resume = options.resume !== false && this.width > 0;
    this.maxBacklog = (options.maxBacklogSeconds ?? 30) * this.rate * this.channels * this.width; // bytes
    this.on = {
      message: options.onMessage,
      partial: options.onPartial,
      final: options.onFinal,
      error: options.onError,
      reconnect: options.onReconnect,
    };
    this.ready = null; // the last ready message
    this.finals = [];
    this.ws = null;
    this.closed = false;
    this.stopped = false;
    // What was sent since the last final's end, for a resend: [{bytes}] and controls ({type: "finalize"|"context"}).
    this.log = [];
    this.logBytes = 0;
    this.base = 0; // source bytes before the current connection's first audio byte
    this.logStart = 0; // the source byte the log's first entry begins at
    this.sentBytes = 0; // source bytes sent in all (or logged while disconnected)
    this.segments = 0; // finals delivered: the next connection's segments are numbered from here
    this.connectionSegments = 0; // finals delivered when the current connection began
    this.finalizing = []; // resolvers of finalize(), in order
    this.ending = null; // {resolve, reject} of stop()
    this.queue = [];
    this.waiters = [];
    this.microphone = null; // openMicrophone's capture: {stop()}
  }

  /** Sends audio: Float32Array (s16le: converted; f32le: as is), Int16Array, or ArrayBuffer / Uint8Array of bytes. */
  send(audio) {
    if (this.closed) throw new ParleyError("closed", "the stream has ended");
    if (this.stopped) throw new Error("send after stop");
    let bytes;
    if (audio instanceof Float32Array) {
      const e = this.startMessage.encoding;
      if (e !== "s16le" && e !== "f32le") throw new Error(`Float32Array audio needs encoding s16le or f32le, not ${e}`);
      bytes = new Uint8Array((e === "s16le" ? floatToS16(audio) : audio.slice()).buffer);
    } else if (ArrayBuffer.isView(audio)) {
      bytes = new Uint8Array(audio.buffer.slice(audio.byteOffset, audio.byteOffset + audio.byteLength));
    } else if (audio instanceof ArrayBuffer) {
      bytes = new Uint8Array(audio.slice(0));
    } else {
      throw new TypeError("audio: a Float32Array, Int16Array, ArrayBuffer or Uint8Array");
    }
    if (this.width && bytes.byteLength % (this.width * this.channels)) {
      throw new Error(`${bytes.byteLength} bytes are not whole ${this.startMessage.encoding} frames`);
    }
    this.sentBytes += bytes.byteLength;
    this._remember({ bytes });
    if (this._open()) this.ws.send(bytes);
  }

  /**
   * Closes the open segment now; the stream goes on.
   * @returns {Promise<object>} the segment's final (`"finalized": true`).
   */
  finalize() {
    return this._control({ type: "finalize" }, true);
  }

  /** New hotwords for the stream from here on (`{hotwords: [...]}`, docs/protocol.md#context-text). */
  context(fields) {
    this._control({ type: "context", ...fields }, false);
  }

  /**
   * No more audio: resolves with every final once the server's end has come.
   * @returns {Promise<object[]>}
   */
  async stop() {
    if (this.microphone && !this.stopped && !this.closed) {
      const mic = this.microphone;
      this.microphone = null;
      await mic.stop(); // its last frame goes out before stop
    }
    if (this.closed) return this.finals;
    if (this.ending) return this.ending.promise;
    this.stopped = true;
    let resolve, reject;
    const promise = new Promise((res, rej) => ([resolve, reject] = [res, rej]));
    this.ending = { promise, resolve, reject };
    if (this._open()) this.ws.send(JSON.stringify({ type: "stop" }));
    return promise;
  }

  /**
   * A browser's microphone as a stream: getUserMedia, the capture worklet (mono, 16 kHz s16le frames of `frameMs`;
   * the page's own, served at /static/worklet.js), then `open` with the worklet's rate (what is said while it
   * connects is held, and sent at ready: nothing after the microphone's grant is lost). `stop()` sends the
   * microphone's last frame, lets go of it and then stops the stream.
   * @param {string} url
   * @param {object} options `open`'s, and `constraints` (getUserMedia's, default {audio: true}), `frameMs` (100),
   *   `workletUrl` (default: /static/worklet.js beside /sdk/), `onLevel` (each frame's level, 0-1)
   * @returns {Promise<ParleyStream>}
   */
  static async openMicrophone(url, options = {}) {
    const { constraints = { audio: true }, frameMs = 100, onLevel } = options;
    const workletUrl = options.workletUrl || new URL("../static/worklet.js", import.meta.url);
    const media = await navigator.mediaDevices.getUserMedia(constraints);
    const ctx = new AudioContext();
    const release = () => {
      media.getTracks().forEach((t) => t.stop());
      ctx.close().catch(() => {});
    };
    let stream;
    try {
      await ctx.audioWorklet.addModule(workletUrl);
      const node = new AudioWorkletNode(ctx, "parley-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        processorOptions: { targetRate: 16000, frameMs },
      });
      const rate = ctx.sampleRate > 16000 ? 16000 : ctx.sampleRate; // at or below 16 kHz the worklet passes it on
      const start = { ...(options.start || {}), sample_rate: rate, encoding: "s16le" };
      stream = new ParleyStream(url, { ...options, start });
      // Capturing before the connection is ready: what is said meanwhile is held, and sent at ready.
      const early = [];
      let connected = false;
      let flushed = null;
      node.port.onmessage = (e) => {
        if (e.data.type === "audio") {
          if (onLevel) onLevel(e.data.level);
          const pcm = new Int16Array(e.data.pcm);
          if (!connected) {
            early.push(pcm);
            if (early.length * frameMs > EARLY_MS) early.shift();
          } else if (!stream.stopped && !stream.closed) {
            stream.send(pcm);
          }
        } else if (e.data.type === "flushed" && flushed) {
          flushed();
        }
      };
      const source = ctx.createMediaStreamSource(media);
      source.connect(node);
      node.connect(ctx.destination); // the worklet writes silence; connected, every browser runs it
      await ctx.resume();
      await stream._connect();
      connected = true;
      for (const pcm of early.splice(0)) stream.send(pcm);
      stream.microphone = {
        // The worklet's last, shorter frame out (at most a second's wait), then the microphone let go.
        async stop() {
          await new Promise((resolve) => {
            flushed = resolve;
            node.port.postMessage({ type: "flush" });
            setTimeout(resolve, 1000);
          });
          release();
        },
      };
    } catch (e) {
      release();
      if (stream) stream.close();
      throw e;
    }
    return stream;
  }

  /** Closes the connection at once (no final for the open segment), and the microphone of `openMicrophone`. */
  close() {
    if (this.microphone) this.microphone.stop();
    this._finish(null);
    if (this.ws) this.ws.close(1000);
  }

  /** Every server message, as it comes (times on the source's clock), until the stream ends. */
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.queue.length) {
        const m = this.queue.shift();
        if (m === null) return;
        yield m;
      } else {
        await new Promise((resolve) => this.waiters.push(resolve));
      }
    }
  }

  // ---- internals ----

  _open() {
    return this.ws && this.ws.readyState === 1 && this.ready !== null && !this.reconnecting;
  }

  _control(message, answered) {
    if (this.closed) throw new ParleyError("closed", "the stream has ended");
    if (this.stopped) throw new Error(`${message.type} after stop`);
    const promise = answered ? new Promise((resolve, reject) => this.finalizing.push({ resolve, reject })) : null;
    this._remember({ control: message });
    if (this._open()) this.ws.send(JSON.stringify(message));
    return promise;
  }

  _remember(entry) {
    if (!this.resume) return;
    this.log.push(entry);
    if (entry.bytes) this.logBytes += entry.bytes.byteLength;
    this._bound();
  }

  // Forgets what the server has decoded: everything before `upto` source bytes (a final's end); a finalize there too
  // when that final answered one.
  _acknowledge(upto, finalized) {
    let at = this.logStart;
    while (this.log.length) {
      const e = this.log[0];
      if (e.control) {
        if (!(at < upto || (at === upto && finalized && e.control.type === "finalize"))) break;
        if (e.control.type === "context") this._keepHotwords(e.control);
        this.log.shift();
        continue;
      }
      const n = e.bytes.byteLength;
      if (at + n <= upto) {
        this.log.shift();
        this.logBytes -= n;
        at += n;
        continue;
      }
      if (at < upto) {
        e.bytes = e.bytes.slice(upto - at);
        this.logBytes -= upto - at;
        at = upto;
      }
      break;
    }
    this.logStart = at;
    this._bound();
  }

  // A context already in effect: a new connection's start carries its hotwords.
  _keepHotwords(context) {
    if (!("hotwords" in context)) return;
    if (context.hotwords && context.hotwords.length) this.startMessage.hotwords = context.hotwords;
    else delete this.startMessage.hotwords;
  }

  // The backlog bounded: its oldest audio goes (a resend then says how much was lost).
  _bound() {
    while (this.logBytes > this.maxBacklog && this.log.length) {
      const e = this.log.shift();
      if (e.control) {
        if (e.control.type === "context") this._keepHotwords(e.control);
        continue;
      }
      this.logBytes -= e.bytes.byteLength;
      this.logStart += e.bytes.byteLength;
    }
  }

  _emit(m) {
    this.queue.push(m);
    this.waiters.splice(0).forEach((w) => w());
    if (this.on.message) this.on.message(m);
  }

  _bytes(seconds) {
    return Math.round(seconds * this.rate) * this.channels * this.width;
  }

  _seconds(bytes) {
    return bytes / (this.rate * this.channels * this.width || 1);
  }

  _shift(m) {
    // Results onto the source's clock: the connection began at `base` bytes, its segments at `segments`.
    if (!this.base || !("start" in m || "end" in m)) return m;
    const dt = this._seconds(this.base);
    const r = (t) => Math.round((t + dt) * 1000) / 1000;
    const out = { ...m };
    if ("start" in m) out.start = r(m.start);
    if ("end" in m) out.end = r(m.end);
    if (Array.isArray(m.words)) out.words = m.words.map((w) => ({ ...w, start: r(w.start), end: r(w.end) }));
    return out;
  }

  _connect() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this.WebSocket(this.url);
      } catch (e) {
        reject(new ParleyError("connect_failed", String(e.message || e)));
        return;
      }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      let readied = false;
      let error = null;
      ws.onopen = () => {
        const start = { ...this.startMessage };
        ws.send(JSON.stringify(start));
      };
      ws.onmessage = (e) => {
        if (this.ws !== ws) return;
        const m = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data));
        if (m.type === "ready") {
          this.ready = m;
          readied = true;
          this._resend(ws);
          resolve(this);
          return;
        }
        if (m.type === "error") {
          error = new ParleyError(m.code, m.message);
          return;
        }
        this._result(this._shift(m));
      };
      ws.onclose = (e) => {
        if (this.ws !== ws) return;
        if (error) error.closeCode = e.code;
        const failure =
          error ||
          (this.ended ? null : new ParleyError(readied ? "closed" : "connect_failed", `closed (${e.code})`, e.code));
        if (!readied) {
          // A first open fails at once; a reopening's loop (_retry) decides.
          reject(failure || new ParleyError("closed", `closed before ready (${e.code})`, e.code));
          return;
        }
        if (!failure) return this._finish(null);
        if (this.resume && RETRYABLE.has(failure.code)) return this._retry(failure);
        this._finish(failure);
      };
      ws.onerror = () => {}; // the close that follows says what happened
    });
  }

  _result(m) {
    if (m.type === "end") {
      this.ended = true;
      return;
    }
    if (m.type === "partial") {
      m.segment += this.connectionSegments;
      this._emit(m);
      if (this.on.partial) this.on.partial(m);
      return;
    }
    if (m.type === "final") {
      m.segment = this.segments;
      this.segments += 1;
      this.finals.push(m);
      if (this.resume) this._acknowledge(this._bytes(m.end), !!m.finalized);
      this._emit(m);
      if (this.on.final) this.on.final(m);
      if (m.finalized && this.finalizing.length) this.finalizing.shift().resolve(m);
      return;
    }
    this._emit(m);
  }

  // After ready on a new connection: the audio and controls the server has not decoded, then stop if it was sent.
  _resend(ws) {
    this.connectionSegments = this.segments;
    if (this.reconnecting) {
      this.reconnecting = false;
      if (this.on.reconnect) this.on.reconnect(this.ready);
      for (const e of this.log) ws.send(e.bytes ? e.bytes : JSON.stringify(e.control));
      if (this.stopped) ws.send(JSON.stringify({ type: "stop" }));
    }
  }

  async _retry(failure) {
    if (this.closed) return;
    this.reconnecting = true;
    const from = this.logStart;
    const covered = Math.max(this.base, this.finals.length ? this._bytes(this.finals.at(-1).end) : 0);
    if (from > covered) {
      const seconds = Math.round(this._seconds(from - covered) * 1000) / 1000;
      const message = `${seconds.toFixed(2)} s of audio beyond the backlog was never decoded`;
      this._emit({ type: "warning", code: "audio_lost", start: this._seconds(covered), seconds, message });
    }
    this.base = from;
    let wait = RETRY_MIN_MS;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.closed) return;
      try {
        await this._connect();
        return;
      } catch (e) {
        if (!(e instanceof ParleyError) || !RETRYABLE.has(e.code)) return this._finish(e);
        wait = Math.min(wait * 2, RETRY_MAX_MS);
      }
    }
  }

  _finish(error) {
    if (this.closed) return;
    this.closed = true;
    this.queue.push(null);
    this.waiters.splice(0).forEach((w) => w());
    for (const f of this.finalizing.splice(0)) f.reject(error || new ParleyError("closed", "the stream ended"));
    if (error) {
      if (this.on.error) this.on.error(error);
      if (this.ending) this.ending.reject(error);
    } else if (this.ending) {
      this.ending.resolve(this.finals);
    }
  }
}

/**
 * An Asterisk call's captions, watched by its UUID (WS /v1/calls/{uuid}, docs/asterisk.md): the screen beside an
 * agent's phone. `ready` once the call has begun (the watch may start before it), the finals so far, then partials,
 * finals and DTMF as the call goes; `ended` resolves with every final at the hangup.
 *
 *     const call = ParleyCall.watch(`wss://asr.example.org/v1/calls/${uuid}`, {onFinal: (f) => show(f)});
 *     const finals = await call.ended;
 */
export class ParleyCall {
  /** Starts watching; `options`: apiKey, WebSocket, onReady, onPartial, onFinal, onDtmf, onMessage. */
  static watch(url, options = {}) {
    return new ParleyCall(url, options);
  }

  constructor(url, options = {}) {
    const WS = options.WebSocket || globalThis.WebSocket;
    this.on = {
      ready: options.onReady,
      partial: options.onPartial,
      final: options.onFinal,
      dtmf: options.onDtmf,
      message: options.onMessage,
    };
    this.ready = null;
    this.finals = [];
    this.dtmf = [];
    let resolve, reject;
    this.ended = new Promise((res, rej) => ([resolve, reject] = [res, rej]));
    let error = null;
    let over = false;
    this.ws = new WS(withKey(url, options.apiKey));
    this.ws.onmessage = (e) => {
      const m = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data));
      if (this.on.message) this.on.message(m);
      if (m.type === "ready") {
        this.ready = m;
        if (this.on.ready) this.on.ready(m);
      } else if (m.type === "partial") {
        if (this.on.partial) this.on.partial(m);
      } else if (m.type === "final") {
        this.finals.push(m);
        if (this.on.final) this.on.final(m);
      } else if (m.type === "dtmf") {
        this.dtmf.push(m);
        if (this.on.dtmf) this.on.dtmf(m);
      } else if (m.type === "end") {
        over = true;
      } else if (m.type === "error") {
        error = new ParleyError(m.code, m.message);
      }
    };
    this.ws.onclose = (e) => {
      if (over) return resolve(this.finals);
      if (error) error.closeCode = e.code;
      reject(error || new ParleyError("closed", `closed before the call's end (${e.code})`, e.code));
    };
    this.ws.onerror = () => {}; // the close that follows says what happened
  }

  /** Stops watching (the call goes on). */
  close() {
    this.ws.close(1000);
  }
}
