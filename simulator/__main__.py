import os

import uvicorn

uvicorn.run("simulator.app:app", host="127.0.0.1", port=int(os.environ.get("SIMULATOR_PORT", "8001")), ws="none", log_level="warning")
