import { describe, expect, it } from 'vitest';
import { defaultPinning, describePinning, parsePinning } from './pin.js';

describe('pinning', () => {
  it('puts the clients alone on core 0 and the server side on the last core by default', () => {
    expect(defaultPinning(2)).toEqual({ load: '0', proxy: '1', aux: '1', stores: '1' });
    expect(defaultPinning(1)).toEqual({ load: '0', proxy: '0', aux: '0', stores: '0' });
  });
  it('reads ROLE=CPUS lists, keeping defaults for roles not named', () => {
    expect(parsePinning('load=0,proxy=0', 2)).toEqual({
      load: '0',
      proxy: '0',
      aux: '1',
      stores: '1',
    });
    expect(parsePinning('stores=0-1,load=0,1', 4)).toEqual({
      load: '0,1',
      proxy: '3',
      aux: '3',
      stores: '0-1',
    });
    expect(parsePinning('', 2)).toEqual(defaultPinning(2));
  });
  it('refuses unknown roles, malformed lists and cores that do not exist', () => {
    expect(parsePinning('client=0', 2)).toMatch(/not ROLE=CPUS/);
    expect(parsePinning('load=x', 2)).toMatch(/not a CPU list/);
    expect(parsePinning('load=2', 2)).toMatch(/CPU 2 does not exist/);
  });
  it('says where everything went', () => {
    expect(describePinning(defaultPinning(2))).toBe(
      'load generator on CPU 0, proxy on CPU 1, slapd and auth_http on CPU 1, Dovecot on CPU 1',
    );
  });
});
