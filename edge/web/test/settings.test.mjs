import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DEFAULT_SETTINGS, loadSettings, sanitizeSettings, saveSettings } from '../static/settings.js';
import { memoryStorage } from './helpers.mjs';

test('defaults when nothing is saved', () => {
  assert.deepEqual(loadSettings(memoryStorage(), ''), { ...DEFAULT_SETTINGS });
  assert.deepEqual(loadSettings(null, ''), { ...DEFAULT_SETTINGS });
  assert.equal(DEFAULT_SETTINGS.scrollback, 5000);
});

test('saved settings round-trip', () => {
  const storage = memoryStorage();
  saveSettings(storage, { fontSize: 18, noColour: true, boldIsBright: false, scrollback: 2000 });
  assert.deepEqual(loadSettings(storage, ''), { fontSize: 18, noColour: true, boldIsBright: false, scrollback: 2000 });
});

test('?scrollback= overrides the saved value for the page view only', () => {
  const storage = memoryStorage();
  saveSettings(storage, { scrollback: 2000, fontSize: 12 });
  const s = loadSettings(storage, '?scrollback=300&token=x');
  assert.equal(s.scrollback, 300);
  assert.equal(s.fontSize, 12);
  assert.equal(loadSettings(storage, '').scrollback, 2000);
});

test('values are clamped and junk is ignored', () => {
  assert.equal(sanitizeSettings({ scrollback: 10 }).scrollback, 100);
  assert.equal(sanitizeSettings({ scrollback: '1e9' }).scrollback, 100000);
  assert.equal(sanitizeSettings({ scrollback: 'lots' }).scrollback, 5000);
  assert.equal(sanitizeSettings({ scrollback: '' }).scrollback, 5000);
  assert.equal(sanitizeSettings({ fontSize: 99 }).fontSize, 32);
  assert.equal(sanitizeSettings({ fontSize: '14.6' }).fontSize, 15);
  assert.equal(sanitizeSettings({ noColour: 'yes' }).noColour, false);
  assert.deepEqual(sanitizeSettings('garbage'), { ...DEFAULT_SETTINGS });
  const storage = memoryStorage();
  storage.setItem('trellis.settings', '{broken');
  assert.deepEqual(loadSettings(storage, ''), { ...DEFAULT_SETTINGS });
});
