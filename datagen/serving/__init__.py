"""Model access, in one place: endpoint settings, the OpenAI-compatible client with its
cache, retries and limits (`client.py`, `response_cache.py`), the model servers crucible
starts on loopback (`transformers_server.py` over `server_processes.py`), the embedded
model (`embedded_model.py`) and generation in process (`in_process.py`).
"""
