import { describe, expect, it } from 'vitest';
import { NODE_FLAGS, withNodeFlags } from './runtime.js';

describe('the Node.js flags of the proxies', () => {
  it('bound the young generation', () => {
    expect(NODE_FLAGS).toContain('--max-semi-space-size=2');
  });

  it('are added to what node was started with', () => {
    expect(withNodeFlags(['--enable-source-maps'])).toEqual([
      '--enable-source-maps',
      '--max-semi-space-size=2',
    ]);
  });

  it('leave a value the operator chose', () => {
    expect(withNodeFlags(['--max-semi-space-size=8'])).toEqual(['--max-semi-space-size=8']);
  });
});
