// The seed's flow through the official Node SDK: upload, assistant, thread with an attachment,
// a polled run, messages, steps, the generated file's download; then a second, streamed run on
// the same thread through the SDK's AssistantStream. Prints one JSON line that the Python test checks.
import OpenAI, { toFile } from "openai";

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY });

const file = await client.files.create({
  file: await toFile(Buffer.from("x,y\n1,2\n3,4\n"), "points.csv"),
  purpose: "assistants",
});
const assistant = await client.beta.assistants.create({
  model: "scripted-model",
  instructions: "Answer with code.",
  tools: [{ type: "code_interpreter" }],
  tool_resources: { code_interpreter: { file_ids: [file.id] } },
});
const thread = await client.beta.threads.create({
  messages: [{ role: "user", content: "Sum the y column.",
               attachments: [{ file_id: file.id, tools: [{ type: "code_interpreter" }] }] }],
});

// 1. Polled run.
const run = await client.beta.threads.runs.createAndPoll(thread.id, { assistant_id: assistant.id });
if (run.status !== "completed") {
  console.log(JSON.stringify({ status: run.status, last_error: run.last_error }));
  process.exit(0);
}
const messages = await client.beta.threads.messages.list(thread.id, { order: "asc" });
const steps = await client.beta.threads.runs.steps.list(run.id, { thread_id: thread.id });
const reply = messages.data.at(-1);
const text = reply.content.find((c) => c.type === "text").text;
const annotation = text.annotations.find((a) => a.type === "file_path");
const download = annotation ? await (await client.files.content(annotation.file_path.file_id)).text() : null;
const toolStep = steps.data.find((s) => s.type === "tool_calls");
const logsOf = (call) => call.code_interpreter.outputs.filter((o) => o.type === "logs").map((o) => o.logs);

// 2. Streamed run on the same thread: the session keeps `df` from the first run.
await client.beta.threads.messages.create(thread.id, { role: "user", content: "How many rows?" });
const events = [];
let streamedText = "";
let streamedCode = "";
const stream = client.beta.threads.runs
  .stream(thread.id, { assistant_id: assistant.id })
  .on("event", (e) => events.push(e.event))
  .on("textDelta", (delta) => { streamedText += delta.value ?? ""; })
  .on("toolCallDelta", (delta) => {
    if (delta.type === "code_interpreter") streamedCode += delta.code_interpreter?.input ?? "";
  });
const streamedRun = await stream.finalRun();
const streamedSteps = await client.beta.threads.runs.steps.list(streamedRun.id, { thread_id: thread.id });
const streamedTool = streamedSteps.data.find((s) => s.type === "tool_calls");

console.log(JSON.stringify({
  status: run.status,
  reply: text.value,
  annotation: annotation ? { start: annotation.start_index, end: annotation.end_index, text: annotation.text } : null,
  logs: logsOf(toolStep.step_details.tool_calls[0]),
  download,
  streamed: {
    status: streamedRun.status,
    text: streamedText,
    code: streamedCode,
    logs: logsOf(streamedTool.step_details.tool_calls[0]),
    events,
  },
}));
