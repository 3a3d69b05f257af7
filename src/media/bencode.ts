/**
 * Bencode, the encoding of rtpengine's ng control protocol: byte strings (`4:spam`), integers
 * (`i42e`), lists (`l…e`) and dictionaries (`d…e`, keys sorted). Strings are read as UTF-8: what
 * ng carries (SDP, call ids, flags) is text.
 */
export type BencodeValue = string | number | BencodeValue[] | BencodeDict;
export interface BencodeDict {
  [key: string]: BencodeValue;
}

/** Lists and dictionaries nested deeper than this are refused: no ng message comes close, and a hostile reply must not exhaust the stack. */
const MAX_DEPTH = 32;

export function encode(value: BencodeValue): Buffer {
  const parts: Buffer[] = [];
  const write = (item: BencodeValue): void => {
    if (typeof item === 'string') {
      parts.push(Buffer.from(`${Buffer.byteLength(item)}:`), Buffer.from(item));
    } else if (typeof item === 'number') {
      if (!Number.isSafeInteger(item)) throw new RangeError(`bencode integers are whole numbers: ${item}`);
      parts.push(Buffer.from(`i${item}e`));
    } else if (Array.isArray(item)) {
      parts.push(Buffer.from('l'));
      item.forEach(write);
      parts.push(Buffer.from('e'));
    } else {
      parts.push(Buffer.from('d'));
      // Keys in the order of their bytes, as bencode requires.
      for (const key of Object.keys(item).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) {
        write(key);
        write(item[key]);
      }
      parts.push(Buffer.from('e'));
    }
  };
  write(value);
  return Buffer.concat(parts);
}

export type DecodeResult = { ok: true; value: BencodeValue } | { ok: false; error: string };

/** Decodes exactly one value filling `data`; never throws. */
export function decode(data: Buffer): DecodeResult {
  let at = 0;
  const fail = (why: string): never => {
    throw new DecodeError(`${why} at byte ${at}`);
  };
  // No leading zeros and no "-0": each integer has one spelling. A string length is never negative.
  const digitsUntil = (end: number, pattern: RegExp): number => {
    const stop = data.indexOf(end, at);
    if (stop === -1) fail('unterminated number');
    const text = data.toString('latin1', at, stop);
    if (!pattern.test(text)) fail(`bad number "${text.slice(0, 20)}"`);
    const number = Number(text);
    // Beyond 2^53 a number is not exact, and encode() would refuse to send it back.
    if (!Number.isSafeInteger(number)) fail(`number out of range "${text}"`);
    at = stop + 1;
    return number;
  };
  /** `depth`: how many lists and dictionaries enclose the value. */
  const read = (depth: number): BencodeValue => {
    const marker = data[at];
    if (marker === undefined) fail('unexpected end');
    if ((marker === 0x6c || marker === 0x64) && depth >= MAX_DEPTH) fail('nesting too deep');
    if (marker === 0x69 /* i */) {
      at++;
      return digitsUntil(0x65 /* e */, /^(0|-?[1-9]\d{0,15})$/);
    }
    if (marker === 0x6c /* l */) {
      at++;
      const list: BencodeValue[] = [];
      while (data[at] !== 0x65) list.push(read(depth + 1));
      at++;
      return list;
    }
    if (marker === 0x64 /* d */) {
      at++;
      const dict: BencodeDict = Object.create(null) as BencodeDict;
      while (data[at] !== 0x65) {
        if (data[at] === undefined) fail('unterminated dictionary');
        const key = read(depth + 1);
        if (typeof key !== 'string') fail('dictionary key is not a string');
        dict[key as string] = read(depth + 1);
      }
      at++;
      return dict;
    }
    if (marker >= 0x30 && marker <= 0x39) {
      const length = digitsUntil(0x3a /* : */, /^(0|[1-9]\d{0,15})$/);
      if (at + length > data.length) fail('string runs past the end');
      const text = data.toString('utf8', at, at + length);
      at += length;
      return text;
    }
    return fail(`unexpected byte 0x${marker.toString(16)}`);
  };
  try {
    const value = read(0);
    if (at !== data.length) fail('bytes after the value');
    return { ok: true, value };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, error: error.message };
    throw error;
  }
}

class DecodeError extends Error {}

export const isDict = (value: BencodeValue | undefined): value is BencodeDict => typeof value === 'object' && value !== null && !Array.isArray(value);
