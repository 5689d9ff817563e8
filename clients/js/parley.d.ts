// Types of parley.mjs: Parley's streaming protocol, version 1 (docs/protocol.md).

export declare const PROTOCOL_VERSION: 1;
/** Errors after which a resumable stream is opened again. */
export declare const RETRYABLE: ReadonlySet<string>;
export declare const BYTES_PER_SAMPLE: Readonly<Record<"s16le" | "f32le" | "mulaw" | "alaw", number>>;

export type Encoding = "s16le" | "f32le" | "mulaw" | "alaw" | "webm" | "ogg" | "mp4";
export type Hotword = string | { phrase: string; boost?: number };

/** The start message's fields (docs/protocol.md#start-text-first-message); `type` is added. */
export interface StartFields {
  sample_rate?: number; // default 16000; left out for webm, ogg and mp4
  encoding?: Encoding; // default "s16le"
  model?: string;
  partials?: boolean;
  search?: "greedy" | "beam";
  language?: string;
  languages?: string[];
  translate?: string[];
  hotwords?: Hotword[];
  lm?: string;
  lm_scale?: number;
  ilm_scale?: number;
  lodr_scale?: number;
  alternatives?: number;
  channels?: number;
  endpointing?: boolean | { silence_after_speech_s?: number; [rule: string]: number | undefined };
  punctuate?: boolean;
  numerals?: boolean;
  redact?: boolean;
  profanity_filter?: boolean;
  respell?: boolean;
  talkers?: boolean;
  [field: string]: unknown;
}

export interface Word {
  word: string;
  start: number;
  end: number;
  conf?: number;
  speaker?: number;
  talker?: number;
}

export interface Ready {
  type: "ready";
  protocol: number;
  session: string;
  model: string;
  chunk_ms: number;
  sample_rate: number;
  encoding: Encoding;
  partials: boolean;
  search: string;
  [field: string]: unknown;
}

export interface Partial {
  type: "partial";
  segment: number;
  text: string;
  start: number;
  end: number;
  stable?: number;
  [field: string]: unknown;
}

export interface Final {
  type: "final";
  segment: number;
  text: string;
  start: number;
  end: number;
  words?: Word[];
  display?: string;
  finalized?: boolean;
  alternatives?: { text: string; confidence: number }[];
  [field: string]: unknown;
}

export interface Warning {
  type: "warning";
  code: "audio_lost";
  start: number;
  seconds: number;
  message: string;
}

export type Message = Partial | Final | Warning | { type: string; [field: string]: unknown };

export declare class ParleyError extends Error {
  /** The server's error code (docs/protocol.md#error), or "connect_failed" / "closed". */
  readonly code: string;
  /** The WebSocket close code, where the connection closed. */
  closeCode: number | null;
}

export interface StreamOptions {
  start?: StartFields;
  apiKey?: string;
  /** A WebSocket class: the global one by default (browsers, Node >= 22); the ws package's on older Node. */
  WebSocket?: unknown;
  /** Reopen the stream after a drain, a full server or a dropped connection (PCM only; default true). */
  resume?: boolean;
  /** The most audio kept for a resend, in seconds (default 30). */
  maxBacklogSeconds?: number;
  onMessage?: (message: Message) => void;
  onPartial?: (partial: Partial) => void;
  onFinal?: (final: Final) => void;
  onError?: (error: ParleyError) => void;
  onReconnect?: (ready: Ready) => void;
}

export declare function floatToS16(samples: Float32Array): Int16Array;

export interface MicrophoneOptions extends StreamOptions {
  /** getUserMedia's constraints (default {audio: true}). */
  constraints?: MediaStreamConstraints;
  /** Milliseconds of audio a message (default 100). */
  frameMs?: number;
  /** The capture worklet (default: /static/worklet.js of the server that served this module). */
  workletUrl?: string | URL;
  /** Each frame's level, 0-1 (a meter). */
  onLevel?: (level: number) => void;
}

export declare class ParleyStream implements AsyncIterable<Message> {
  /** Connects, sends start, waits for ready; rejects with a ParleyError when the server refuses it. */
  static open(url: string, options?: StreamOptions): Promise<ParleyStream>;
  /** A browser's microphone, resampled to 16 kHz by the capture worklet, as a stream; stop() lets go of it. */
  static openMicrophone(url: string, options?: MicrophoneOptions): Promise<ParleyStream>;
  /** The last ready message (a new one after each reconnection). */
  readonly ready: Ready;
  /** Every final so far, on the source's clock. */
  readonly finals: Final[];
  /** Float32Array in [-1, 1] (s16le: converted), Int16Array, or the encoding's bytes. */
  send(audio: Float32Array | Int16Array | ArrayBuffer | Uint8Array): void;
  /** Closes the open segment now; resolves with its final ("finalized": true). */
  finalize(): Promise<Final>;
  /** New hotwords from here on. */
  context(fields: { hotwords: Hotword[] }): void;
  /** No more audio: resolves with every final once the server's end has come. */
  stop(): Promise<Final[]>;
  /** Closes at once (no final for the open segment), and the microphone of openMicrophone. */
  close(): void;
  [Symbol.asyncIterator](): AsyncIterator<Message>;
}

export interface Dtmf {
  type: "dtmf";
  digit: string;
  /** Seconds into the call. */
  time: number;
}

export interface CallReady {
  type: "ready";
  uuid: string;
  model: string;
  sample_rate: number;
}

export interface CallOptions {
  apiKey?: string;
  WebSocket?: unknown;
  onReady?: (ready: CallReady) => void;
  onPartial?: (partial: Partial) => void;
  onFinal?: (final: Final) => void;
  onDtmf?: (dtmf: Dtmf) => void;
  onMessage?: (message: Message) => void;
}

/** An Asterisk call's captions by its UUID (WS /v1/calls/{uuid}, docs/asterisk.md). */
export declare class ParleyCall {
  /** Starts watching `ws(s)://HOST/v1/calls/UUID`; the call may not have begun yet. */
  static watch(url: string, options?: CallOptions): ParleyCall;
  /** The call's ready once it has begun (model, sample rate). */
  readonly ready: CallReady | null;
  readonly finals: Final[];
  readonly dtmf: Dtmf[];
  /** Every final, at the call's end; rejects with a ParleyError (unknown_call, ...) or when the watch is closed. */
  readonly ended: Promise<Final[]>;
  /** Stops watching (the call goes on). */
  close(): void;
}
