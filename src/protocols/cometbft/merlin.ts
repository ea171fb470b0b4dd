/**
 * Merlin transcripts over STROBE-128/1600, the parts SecretConnection needs: a transcript
 * label, labelled messages and challenge bytes. Only the framing is ours; the permutation is
 * @noble/hashes' Keccak-f[1600] (keccakP with 24 rounds).
 *
 * STROBE (strobe.sourceforge.io, v1.0.2; its domain string is "STROBEv1.0.2") with security 128 has a rate of 166 bytes: 200 bytes
 * of state minus 2·16 of capacity minus 2 for padding. Merlin uses only the meta-AD, AD and PRF
 * operations, never in "more" mode except where noted.
 */
import { keccakP } from '@noble/hashes/sha3.js';

const STROBE_R = 166;
const FLAG_I = 1;
const FLAG_A = 1 << 1;
const FLAG_C = 1 << 2;
const FLAG_M = 1 << 4;

const ascii = (s: string) => new TextEncoder().encode(s);
const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

class Strobe128 {
  private readonly words = new Uint32Array(50);
  private readonly state = new Uint8Array(this.words.buffer);
  private pos = 0;
  private posBegin = 0;
  private curFlags = 0;

  constructor(protocolLabel: Uint8Array) {
    if (!isLittleEndian) throw new Error('STROBE here assumes a little-endian host');
    this.state.set([1, STROBE_R + 2, 1, 0, 1, 96]);
    this.state.set(ascii('STROBEv1.0.2'), 6);
    keccakP(this.words, 24);
    this.metaAd(protocolLabel, false);
  }

  private runF(): void {
    this.state[this.pos]! ^= this.posBegin;
    this.state[this.pos + 1]! ^= 0x04;
    this.state[STROBE_R + 1]! ^= 0x80;
    keccakP(this.words, 24);
    this.pos = 0;
    this.posBegin = 0;
  }

  private absorb(data: Uint8Array): void {
    for (const b of data) {
      this.state[this.pos]! ^= b;
      this.pos++;
      if (this.pos === STROBE_R) this.runF();
    }
  }

  private squeeze(out: Uint8Array): void {
    for (let i = 0; i < out.length; i++) {
      out[i] = this.state[this.pos]!;
      this.state[this.pos] = 0;
      this.pos++;
      if (this.pos === STROBE_R) this.runF();
    }
  }

  private beginOp(flags: number, more: boolean): void {
    if (more) {
      if (flags !== this.curFlags) throw new Error('STROBE: continued operation changed flags');
      return;
    }
    const oldBegin = this.posBegin;
    this.posBegin = this.pos + 1;
    this.curFlags = flags;
    this.absorb(Uint8Array.of(oldBegin, flags));
    // C and K operations must start on a fresh block.
    if ((flags & FLAG_C) !== 0 && this.pos !== 0) this.runF();
  }

  metaAd(data: Uint8Array, more: boolean): void {
    this.beginOp(FLAG_M | FLAG_A, more);
    this.absorb(data);
  }

  ad(data: Uint8Array, more: boolean): void {
    this.beginOp(FLAG_A, more);
    this.absorb(data);
  }

  prf(out: Uint8Array, more: boolean): void {
    this.beginOp(FLAG_I | FLAG_A | FLAG_C, more);
    this.squeeze(out);
  }
}

function le32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export class MerlinTranscript {
  private readonly strobe = new Strobe128(ascii('Merlin v1.0'));

  constructor(label: string | Uint8Array) {
    this.appendMessage('dom-sep', typeof label === 'string' ? ascii(label) : label);
  }

  appendMessage(label: string | Uint8Array, message: Uint8Array): void {
    this.strobe.metaAd(typeof label === 'string' ? ascii(label) : label, false);
    this.strobe.metaAd(le32(message.length), true);
    this.strobe.ad(message, false);
  }

  /** Merlin's challenge_bytes (Go: ExtractBytes). */
  challengeBytes(label: string | Uint8Array, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.strobe.metaAd(typeof label === 'string' ? ascii(label) : label, false);
    this.strobe.metaAd(le32(length), true);
    this.strobe.prf(out, false);
    return out;
  }
}
