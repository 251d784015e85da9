"""The code under test, in Python: asks for a haiku, streamed, through the openai SDK.

The client is built the ordinary way: the SDK's HTTP client reads HTTPS_PROXY and
SSL_CERT_FILE from the environment, and the key from OPENAI_API_KEY.
`python app.py` prints the answer.
"""

from __future__ import annotations

from openai import OpenAI

QUESTION = "Write a haiku about proxies."


def haiku() -> str:
    stream = OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


if __name__ == "__main__":
    print(haiku())
