"""Model access, in one place: endpoint settings, the OpenAI-compatible client with its
cache, retries and limits (`client.py`, `response_cache.py`, `request_errors.py`), its
adaptive concurrency (`adaptive_concurrency.py`) and batch jobs (`batch_jobs.py`), the
model servers crucible starts on loopback (`transformers_server.py` over
`server_processes.py`), the embedded model (`embedded_model.py`) and generation in
process (`in_process.py`).
"""
