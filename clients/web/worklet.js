// Parley's capture worklet: microphone audio at the AudioContext's rate in, 16 kHz s16le frames out.
//
// Runs on the audio rendering thread. Each 128-sample render quantum is mixed to mono, low-pass filtered and
// resampled to 16 kHz by a Kaiser-windowed sinc interpolator (the anti-aliasing filter and the decimation are one
// step, so any input rate works: 48 kHz, 44.1 kHz, 96 kHz...), converted to 16-bit integers and gathered into frames
// of `frameMs` (100 ms: 1600 samples). Each frame goes to the page as {type: "audio", pcm: ArrayBuffer, level}.
// The page sends {type: "flush"} to get the last, shorter frame and a {type: "flushed"} reply.
// At or below 16 kHz the audio passes through at its own rate (the server resamples).

const PASSBAND_HZ = 7200; // kept flat: speech features (80 fbank bins) reach 8 kHz, little energy above 7 kHz
const STOPBAND_HZ = 8800; // folds onto 7.2 kHz at 16 kHz: aliases land only above the passband
const ATTENUATION_DB = 80; // stopband rejection
const TABLE_STEPS = 512; // kernel samples per input sample; linear interpolation between them

// I0, the modified Bessel function of the first kind, order 0 (series; converges fast for the betas used here).
function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

// Band-limited resampler from `inRate` to `outRate` < `inRate`: y[n] = sum_k x[k] h(n * inRate / outRate - k).
class SincResampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate; // input samples per output sample
    const cutoff = (PASSBAND_HZ + STOPBAND_HZ) / 2 / inRate; // cycles per input sample
    const transition = (STOPBAND_HZ - PASSBAND_HZ) / inRate;
    // Kaiser's formulas for the window's length and shape at the wanted attenuation.
    const taps = Math.ceil((ATTENUATION_DB - 7.95) / (14.36 * transition));
    const beta = 0.1102 * (ATTENUATION_DB - 8.7);
    this.half = Math.ceil(taps / 2); // input samples on each side of an output instant
    const n = this.half * TABLE_STEPS + 2;
    this.table = new Float32Array(n); // h(t) for t = i / TABLE_STEPS, t >= 0 (h is symmetric)
    const i0beta = besselI0(beta);
    for (let i = 0; i < n; i++) {
      const t = i / TABLE_STEPS;
      const r = t / this.half;
      const window = r < 1 ? besselI0(beta * Math.sqrt(1 - r * r)) / i0beta : 0;
      const x = 2 * Math.PI * cutoff * t;
      const sinc = t === 0 ? 1 : Math.sin(x) / x;
      this.table[i] = 2 * cutoff * sinc * window;
    }
    // Input history: `half` zeros first, so that the first output is centered on the first input sample.
    this.buf = new Float32Array(4096);
    this.len = this.half;
    this.pos = this.half; // the next output instant, in samples of `buf`
  }

  kernel(t) {
    const u = Math.abs(t) * TABLE_STEPS;
    const i = Math.floor(u);
    const f = u - i;
    return this.table[i] + f * (this.table[i + 1] - this.table[i]);
  }

  // Appends `input` (Float32Array) and calls `emit(sample)` for every output sample it completes.
  push(input, emit) {
    if (this.len + input.length > this.buf.length) {
      const bigger = new Float32Array(2 * (this.len + input.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
    const { buf, half } = this;
    while (Math.floor(this.pos) + half < this.len) {
      const center = Math.floor(this.pos);
      const frac = this.pos - center;
      let acc = 0;
      for (let k = -half + 1; k <= half; k++) {
        acc += buf[center + k] * this.kernel(k - frac);
      }
      emit(acc);
      this.pos += this.step;
    }
    // Drop what no future output needs.
    const keep = Math.floor(this.pos) - half + 1;
    if (keep > 0) {
      buf.copyWithin(0, keep, this.len);
      this.len -= keep;
      this.pos -= keep;
    }
  }
}

class ParleyCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    const target = opts.targetRate || 16000;
    this.outRate = sampleRate > target ? target : sampleRate; // `sampleRate`: the AudioContext's, a worklet global
    this.resampler = sampleRate > target ? new SincResampler(sampleRate, target) : null;
    this.frame = new Int16Array(Math.round((this.outRate * (opts.frameMs || 100)) / 1000));
    this.filled = 0;
    this.energy = 0;
    this.mono = new Float32Array(128);
    this.emit = (y) => this.append(y);
    this.port.onmessage = (e) => {
      if (e.data && e.data.type === "flush") {
        this.post();
        this.port.postMessage({ type: "flushed" });
      }
    };
    this.port.postMessage({ type: "format", sampleRate: this.outRate, inputRate: sampleRate });
  }

  append(y) {
    const s = y > 1 ? 1 : y < -1 ? -1 : y;
    this.frame[this.filled++] = Math.round(s < 0 ? s * 32768 : s * 32767);
    this.energy += s * s;
    if (this.filled === this.frame.length) this.post();
  }

  post() {
    if (this.filled === 0) return;
    const pcm = this.frame.slice(0, this.filled).buffer;
    const level = Math.sqrt(this.energy / this.filled);
    this.port.postMessage({ type: "audio", pcm, level }, [pcm]);
    this.filled = 0;
    this.energy = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true; // no input connected yet (or the track ended)
    const n = channels[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    const mono = this.mono;
    mono.set(channels[0]);
    for (let c = 1; c < channels.length; c++) {
      const ch = channels[c];
      for (let i = 0; i < n; i++) mono[i] += ch[i];
    }
    if (channels.length > 1) for (let i = 0; i < n; i++) mono[i] /= channels.length;
    if (this.resampler) this.resampler.push(mono, this.emit);
    else for (let i = 0; i < n; i++) this.append(mono[i]);
    return true;
  }
}

registerProcessor("parley-capture", ParleyCapture);
