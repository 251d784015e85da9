// The code under test, in Node (no npm packages): asks for a colour, streamed, and prints
// the answer's text. Node 20's fetch does not read HTTPS_PROXY, so the request goes
// through a CONNECT tunnel to the proxy it names; NODE_EXTRA_CA_CERTS makes Node trust
// the proxy's CA, OPENAI_API_KEY is the key.
import http from "node:http";
import https from "node:https";
import tls from "node:tls";

const HOST = "api.openai.com";
const proxy = new URL(process.env.HTTPS_PROXY);

function tunnel() {
  return new Promise((resolve, reject) => {
    http
      .request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: `${HOST}:443` })
      .on("connect", (res, socket) =>
        res.statusCode === 200 ? resolve(socket) : reject(new Error(`CONNECT answered ${res.statusCode}`)),
      )
      .on("error", reject)
      .end();
  });
}

function ask(socket, question) {
  const body = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: question }] });
  const headers = {
    host: HOST, // else Node, given a connection of its own, names port 80
    authorization: `Bearer ${process.env.OPENAI_API_KEY}`,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  };
  const connection = () => tls.connect({ socket, servername: HOST });
  return new Promise((resolve, reject) => {
    const request = https.request(
      { host: HOST, path: "/v1/chat/completions", method: "POST", headers, createConnection: connection },
      (res) => {
        let sse = "";
        res.setEncoding("utf8");
        res.on("data", (text) => (sse += text));
        res.on("end", () => {
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${sse}`));
          const data = sse.split("\n").filter((line) => line.startsWith("data: ") && line !== "data: [DONE]");
          resolve(data.map((line) => JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? "").join(""));
        });
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

console.log(await ask(await tunnel(), "Name a colour."));
