#!/usr/bin/env python3
"""Compare `capsci mcp` with an unsandboxed Python MCP server for Z3 (mcp-z3-prover, from PyPI,
installed by scripts/bench-mcp-peer.sh into a throwaway venv; never a capsci dependency).

The same stdlib-only JSON-RPC client drives both over stdio and measures, in one run:
  - spawn -> `initialize` answered (median of 10 spawns);
  - a warm tiny SMT call (median and p90 of 30 after a warm-up): capsci's `smt_solver_check`
    of a one-variable script (sandboxed, recorded, model re-checked) against the peer's `solve`
    of the same constraint (variable and constraint created once, outside the timing).
"""
import json, os, statistics, subprocess, sys, tempfile, time

SMT = "(declare-const x Int)(assert (> x 0))(check-sat)"


class Client:
    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        self.next_id = 1

    def send(self, message):
        self.p.stdin.write(json.dumps(message) + "\n")
        self.p.stdin.flush()

    def request(self, method, params):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("server closed")
            message = json.loads(line)
            if message.get("id") == rid:
                return message

    def initialize(self):
        reply = self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                            "clientInfo": {"name": "peer-bench", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def call(self, name, arguments):
        reply = self.request("tools/call", {"name": name, "arguments": arguments})
        if "error" in reply or reply.get("result", {}).get("isError"):
            raise RuntimeError(f"{name} failed: {reply}")
        return reply["result"]

    def close(self):
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def spawn_to_initialize(argv, env):
    times = []
    for _ in range(10):
        t = time.perf_counter()
        c = Client(argv, env)
        c.initialize()
        times.append((time.perf_counter() - t) * 1000)
        c.close()
    return statistics.median(times)


def warm_calls(client, name, arguments):
    client.call(name, arguments)  # warm-up: closures, spare pools, imports
    time.sleep(1.0)
    times = []
    for _ in range(30):
        t = time.perf_counter()
        client.call(name, arguments)
        times.append((time.perf_counter() - t) * 1000)
        time.sleep(0.05)  # calls arrive one by one, as from an agent
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def main():
    capsci, peer = sys.argv[1], sys.argv[2]
    store = tempfile.mkdtemp(prefix="capsci-peer-bench-")
    env = dict(os.environ, CAPSCI_STORE=store)
    capsci_argv, peer_argv = [capsci, "mcp"], [peer]

    init_capsci = spawn_to_initialize(capsci_argv, env)
    init_peer = spawn_to_initialize(peer_argv, None)

    c = Client(capsci_argv, env)
    c.initialize()
    capsci_p50, capsci_p90 = warm_calls(c, "smt_solver_check", {"smtlib": SMT})
    c.close()

    p = Client(peer_argv)
    p.initialize()
    p.call("create_int_var", {"name": "x"})
    p.call("add_constraint", {"constraint": "int:x > 0"})  # the peer names variables kind:name
    peer_p50, peer_p90 = warm_calls(p, "solve", {})
    p.close()

    print("| measure | capsci mcp | mcp-z3-prover (unsandboxed) | ratio |")
    print("|---|---|---|---|")
    print(f"| spawn -> initialize, median | {init_capsci:.1f} ms | {init_peer:.1f} ms | {init_capsci / init_peer:.2f}x |")
    print(f"| warm tiny SMT call, median | {capsci_p50:.1f} ms | {peer_p50:.1f} ms | {capsci_p50 / peer_p50:.2f}x |")
    print(f"| warm tiny SMT call, p90 | {capsci_p90:.1f} ms | {peer_p90:.1f} ms | {capsci_p90 / peer_p90:.2f}x |")


if __name__ == "__main__":
    main()
