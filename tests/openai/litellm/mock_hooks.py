"""The mock model's answers, decided per request by the proxy's own pre-call hook.

The answer repeats every user message the proxy received, so a test sees the history botkit
sent. A question containing "[429]" or "[500]" gets LiteLLM's mock rate-limit or server error
every time; "[429 once]" gets the rate-limit error on its first request only. An answer to a
question asked before says which request it was, so a test sees that botkit retried.
"""

from litellm.integrations.custom_logger import CustomLogger


class MockAnswers(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, int] = {}

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):  # noqa: ANN001, ANN201
        questions = [m.get("content") for m in data.get("messages") or [] if m.get("role") == "user"]
        last = str(questions[-1]) if questions else ""
        self.asked[last] = self.asked.get(last, 0) + 1
        if "[429]" in last or ("[429 once]" in last and self.asked[last] == 1):
            data["mock_response"] = "litellm.RateLimitError"
        elif "[500]" in last:
            data["mock_response"] = "litellm.InternalServerError"
        else:
            again = f" (request {self.asked[last]})" if self.asked[last] > 1 else ""
            data["mock_response"] = f"Heard {len(questions)}: " + " | ".join(map(str, questions)) + again
        return data


handler = MockAnswers()
