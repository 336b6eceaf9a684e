// Greedy tokens from llama.cpp for memtune's GGUF checks (tests/serve/test_llamacpp.py).
// stdin: {"runs": [{"model": path, "lora": path|null}], "prompts": [[token ids]], "texts": [string], "n": int}
// stdout: {"runs": [{"answers": [[token ids]], "tokenized": [[token ids]]}]}
// Prompts go in as token ids (so the model is compared, not the tokenizer); texts are tokenised by
// llama.cpp with special tokens parsed, to compare its tokenizer with the one memtune trained with.
import {getLlama} from "node-llama-cpp";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const out = {runs: []};
for (const run of job.runs) {
  const model = await llama.loadModel({modelPath: run.model});
  const ctx = await model.createContext({
    contextSize: 1024, sequences: 1, threads: job.threads || 1,
    ...(run.lora ? {lora: {adapters: [{filePath: run.lora, scale: 1}]}} : {}),
  });
  const seq = ctx.getSequence();
  const answers = [];
  for (const prompt of job.prompts) {
    await seq.clearHistory();
    const got = [];
    if (job.n > 0) {
      for await (const t of seq.evaluate(prompt, {temperature: 0})) {
        got.push(t);
        if (got.length >= job.n || model.isEogToken(t)) break;
      }
    }
    answers.push(got);
  }
  const tokenized = (job.texts || []).map((t) => Array.from(model.tokenize(t, true)));
  out.runs.push({answers, tokenized});
  await ctx.dispose();
  await model.dispose();
}
process.stdout.write(JSON.stringify(out));
await llama.dispose();
