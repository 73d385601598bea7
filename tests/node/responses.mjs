// A streamed Responses flow through the official Node SDK: a CSV uploaded, a response with the
// code_interpreter tool on an auto container streamed with client.responses.stream(), and the
// cited file downloaded from the container. Prints one JSON line that the Python test checks.
import OpenAI, { toFile } from "openai";

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY });

const file = await client.files.create({
  file: await toFile(Buffer.from("x,y\n1,2\n3,4\n"), "points.csv"),
  purpose: "assistants",
});
const stream = client.responses.stream({
  model: "scripted-model",
  input: "Sum the y column.",
  tools: [{ type: "code_interpreter", container: { type: "auto", file_ids: [file.id] } }],
  include: ["code_interpreter_call.outputs"],
});
const events = [];
for await (const event of stream) events.push(event.type);
const response = await stream.finalResponse();
const call = response.output.find((item) => item.type === "code_interpreter_call");
const message = response.output.find((item) => item.type === "message");
const citation = message.content[0].annotations[0];
const content = await client.containers.files.content.retrieve(citation.file_id, { container_id: citation.container_id });
console.log(JSON.stringify({
  status: response.status, events, code: call.code, logs: call.outputs.map((o) => o.logs),
  text: response.output_text, citation, download: await content.text(),
}));
