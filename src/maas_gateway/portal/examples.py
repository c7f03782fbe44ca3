"""Copy-paste examples for one model: curl, the Python OpenAI SDK and JavaScript ``fetch``.

Plain text, escaped by the template like anything else. The key is always a placeholder read from the
environment (``MAAS_API_KEY``): a page never shows a secret outside the one answer that created it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["Example", "examples"]

KEY_VARIABLE = "MAAS_API_KEY"


@dataclass(frozen=True, slots=True)
class Example:
    slug: str  # for element ids: curl, python, javascript
    title: str
    code: str


def examples(base_url: str, model: str) -> list[Example]:
    """Examples that call ``model`` through the API at ``base_url`` (ending in ``/v1``)."""
    body = {"model": model, "messages": [{"role": "user", "content": "Hello!"}]}
    curl = (
        f"curl {base_url}/chat/completions \\\n"
        f'  -H "Authorization: Bearer ${KEY_VARIABLE}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{json.dumps(body)}'"
    )
    python = (
        "import os\n"
        "from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}", api_key=os.environ["{KEY_VARIABLE}"])\n'
        "answer = client.chat.completions.create(\n"
        f'    model="{model}",\n'
        '    messages=[{"role": "user", "content": "Hello!"}],\n'
        ")\n"
        "print(answer.choices[0].message.content)"
    )
    javascript = (
        f'const response = await fetch("{base_url}/chat/completions", {{\n'
        '  method: "POST",\n'
        "  headers: {\n"
        f"    Authorization: `Bearer ${{process.env.{KEY_VARIABLE}}}`,\n"
        '    "Content-Type": "application/json",\n'
        "  },\n"
        f"  body: JSON.stringify({json.dumps(body)}),\n"
        "});\n"
        "const answer = await response.json();\n"
        "console.log(answer.choices[0].message.content);"
    )
    return [
        Example("curl", "curl", curl),
        Example("python", "Python (OpenAI SDK)", python),
        Example("javascript", "JavaScript (fetch)", javascript),
    ]
