// MSDP variables from the game (the edge's msdp frames) and the gauges
// they feed.
//
// The edge sends each variable as {type: "msdp", var, val}, val being JSON:
// over MSDP a string, an array or an object ("95", never 95). The page keeps
// the last value of each, a bounded number of them, and draws a gauge for
// every pair like HEALTH / HEALTH_MAX with the same code as the GMCP vitals.

import { vitalPairs } from './vitals.js';

/** Variables kept at most; past it the least recently updated goes. */
export const MSDP_MAX_VARS = 256;

/** What the page asks the game to REPORT: the gauges' variables. */
export const MSDP_REPORT = ['HEALTH', 'HEALTH_MAX', 'MANA', 'MANA_MAX', 'MOVEMENT', 'MOVEMENT_MAX'];

export class MsdpState {
  constructor(max = MSDP_MAX_VARS) {
    this.max = max;
    this.vars = new Map(); // insertion order = least recently updated first
  }

  /** Records the value of one variable. */
  set(name, val) {
    if (typeof name !== 'string' || name === '') return;
    this.vars.delete(name);
    this.vars.set(name, val);
    while (this.vars.size > this.max) this.vars.delete(this.vars.keys().next().value);
  }

  get(name) {
    return this.vars.get(name);
  }

  /** The gauge pairs among the variables that hold a single value. */
  pairs() {
    const flat = {};
    for (const [name, val] of this.vars) {
      if (typeof val === 'string' || typeof val === 'number') flat[name] = val;
    }
    return vitalPairs(flat);
  }
}

/**
 * Decides when to send the REPORT. The page cannot see the telnet
 * negotiation, and a REPORT that reaches the game before it agreed to MSDP
 * is dropped; games offer MSDP before their first text, so the REPORT goes
 * once the game has sent output after a welcome or a (re)connection.
 * Sending it twice is harmless (the game sends the values again).
 */
export class MsdpReporter {
  constructor() {
    this.armed = false;
  }

  /** A welcome, or a status saying the game connection is new. */
  arm() {
    this.armed = true;
  }

  /** An output frame arrived: true when the REPORT is due now. */
  due() {
    if (!this.armed) return false;
    this.armed = false;
    return true;
  }
}
