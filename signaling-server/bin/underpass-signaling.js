#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, as every Node host of Underpass does.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
