// Test-only reference: runs TF.js graph models with TensorFlow.js's CPU backend (pure JavaScript)
// and writes their outputs, so tests can compare Opsis's ONNX conversions with TF.js itself.
//
// Usage: node run.js JOBS.json
// JOBS.json: [{"model": "dir/model.json",
//              "inputs": {"<signature input key>": {"dtype": "float32"|"int32", "shape": [...], "file": "x.bin"}},
//              "output": "prefix"}]
// Writes prefix.json ({"<signature output key>": {"dtype", "shape", "file"}}) and one .bin per output.
// Paths are relative to JOBS.json's folder; .bin files are raw little-endian arrays.
'use strict';

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

function readArray(file, dtype) {
  const raw = fs.readFileSync(file);
  const buffer = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  return dtype === 'int32' ? new Int32Array(buffer) : new Float32Array(buffer);
}

async function loadModel(modelPath) {
  const spec = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const folder = path.dirname(modelPath);
  const shards = spec.weightsManifest.flatMap((group) => group.paths.map((p) => fs.readFileSync(path.join(folder, p))));
  const joined = Buffer.concat(shards);
  return converter.loadGraphModel(tf.io.fromMemory({
    modelTopology: spec.modelTopology,
    weightSpecs: spec.weightsManifest.flatMap((group) => group.weights),
    weightData: joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength),
    format: spec.format,
    signature: spec.signature,
  }));
}

async function runJob(job, root) {
  const model = await loadModel(path.join(root, job.model));
  const signature = model.signature;
  const feeds = {};
  for (const [key, input] of Object.entries(job.inputs)) {
    const values = readArray(path.join(root, input.file), input.dtype);
    feeds[signature.inputs[key].name] = tf.tensor(values, input.shape, input.dtype);
  }
  const keys = Object.keys(signature.outputs);
  const results = await model.executeAsync(feeds, keys.map((key) => signature.outputs[key].name));
  const tensors = Array.isArray(results) ? results : [results];
  const index = {};
  keys.forEach((key, i) => {
    const file = `${job.output}.${i}.bin`;
    fs.writeFileSync(path.join(root, file), Buffer.from(tensors[i].dataSync().buffer));
    index[key] = { dtype: tensors[i].dtype, shape: tensors[i].shape, file };
  });
  fs.writeFileSync(path.join(root, `${job.output}.json`), JSON.stringify(index));
}

async function main() {
  const jobsPath = process.argv[2];
  const root = path.dirname(jobsPath);
  await tf.setBackend('cpu');
  for (const job of JSON.parse(fs.readFileSync(jobsPath, 'utf8'))) {
    await runJob(job, root);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
