// Erasure coding: public exports.
export { ReedSolomon, type ReedSolomonOptions, type ReconstructOptions } from './reed-solomon.js';
export { ReferenceReedSolomon } from './reference.js';
export {
  ErasureService,
  type ErasureServiceOptions,
  type ErasureCallOptions,
  type ErasureDecodeOptions,
} from './service.js';
export { availableKernels, bestKernel, getKernel, setKernel, KERNEL_NAMES, type KernelName } from './native.js';
export { MAX_TOTAL_SHARDS } from './validate.js';
