"""A Turnbuckle-style rule-provider client checking `edgeplane provider serve`.

Expected answers are computed by hand from examples/metro (see docs/network.md for the
topology): for example ar-render-2 runs on edge-9-a, and the stadium is reached by
edge-9 -> metro-3 -> metro-2 -> metro-1 -> edge-1 -> stadium = 2.5 + 3 + 3 + 2 + 1 = 11.5ms.

Usage: grpc_interop.py --stubs DIR --address HOST:PORT --flavour edgeplane|turnbuckle
"""

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--flavour", choices=["edgeplane", "turnbuckle"], required=True)
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)

    import grpc
    import ruleprovider_pb2 as pb
    import ruleprovider_pb2_grpc as rpc

    channel = grpc.insecure_channel(args.address)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = rpc.RuleProviderStub(channel)
    state = pb.EvaluateResponse.ComplianceState
    extended = args.flavour == "edgeplane"
    failures = []
    passed = []

    def pod(name):
        return pb.Target(namespace="ar", apiVersion="v1", kind="Pod", name=name)

    def site(name):
        return pb.Target(apiVersion="network.edgeplane.io/v1alpha1", kind="Site", name=name)

    def rule(name, request, limit=""):
        return pb.PolicyRule(name=name, request=request, limit=limit)

    def evaluate(label, targets, policy_rule, compliance, value=None, reason=None):
        answer = stub.Evaluate(pb.EvaluateRequest(targets=targets, rule=policy_rule), timeout=10)
        got = state.Name(answer.compliance)
        problems = []
        if got != compliance:
            problems.append(f"compliance {got}, expected {compliance}")
        if reason is not None and answer.reason != reason:
            problems.append(f"reason {answer.reason!r}, expected {reason!r}")
        if extended and value is not None and answer.value != value:
            problems.append(f"value {answer.value!r}, expected {value!r}")
        if not extended and hasattr(answer, "value"):
            problems.append("a Turnbuckle client sees edgeplane's value field")
        if problems:
            failures.append(f"Evaluate {label}: " + "; ".join(problems))
        else:
            passed.append(label)
            print(f"ok   Evaluate {label}: {got} ({answer.reason})")

    def costs(label, source, policy_rule, peers, eligible, expected):
        answer = stub.EndpointCost(
            pb.EndpointCostRequest(
                source=source, rule=policy_rule, peerNodes=peers, eligibleNodes=eligible
            ),
            timeout=10,
        )
        got = [(c.node, c.cost) for c in answer.nodeAndCost]
        if got != expected:
            failures.append(f"EndpointCost {label}: {got}, expected {expected}")
        else:
            passed.append(label)
            print(f"ok   EndpointCost {label}: {got}")

    evaluate(
        "latency renderer-2 to the stadium",
        {"renderer": pod("ar-render-2"), "users": site("stadium")},
        rule("latency", "2ms", "5ms"),
        "Violation",
        "11.5ms",
        "latency 11.5ms between renderer (edge-9-a) and users (stadium) is worse than the limit 5ms",
    )
    evaluate(
        "latency renderer-0 to the stadium",
        {"renderer": pod("ar-render-0"), "users": site("stadium")},
        rule("latency", "2ms", "5ms"),
        "Compliant",
        "1ms",
    )
    evaluate(
        "jitter renderer-2 to the stadium",
        {"renderer": pod("ar-render-2"), "users": site("stadium")},
        rule("jitter", "1ms", "2ms"),
        "Limit",
        "1.3ms",
    )
    evaluate(
        "latency renderer-2 to the game state",
        {"renderer": pod("ar-render-2"), "game-state": pod("game-state-0")},
        rule("latency", "5ms", "10ms"),
        "Limit",
        "8.5ms",
    )
    evaluate(
        "bandwidth renderer-1 to the ingest",
        {"renderer": pod("ar-render-1"), "ingest": pod("video-ingest-0")},
        rule("bandwidth", "1Gbps", "400Mbps"),
        "Violation",
        "300Mbps",
    )
    evaluate(
        "packet-loss renderer-2 to the ingest",
        {"renderer": pod("ar-render-2"), "ingest": pod("video-ingest-0")},
        rule("packet-loss", "0.01%", "0.1%"),
        "Limit",
        "0.021%",
    )
    evaluate(
        "cpu of renderer-2's node",
        {"renderer": pod("ar-render-2")},
        rule("cpu", "8", "4"),
        "Limit",
        "4",
        "cpu 4 on renderer (edge-9-a) is worse than the request 8 but within the limit 4",
    )
    evaluate(
        "AVX-512 on renderer-1's node",
        {"renderer": pod("ar-render-1")},
        rule("node-feature", "cpu-cpuid.AVX512F"),
        "Violation",
        "cpu-cpuid.AVX512F=false",
    )
    evaluate(
        "a renderer that does not exist",
        {"renderer": pod("ar-render-9"), "users": site("stadium")},
        rule("latency", "2ms", "5ms"),
        "Pending",
        None,
        "renderer (Pod ar/ar-render-9) does not exist",
    )
    evaluate(
        "a rule without a provider",
        {"renderer": pod("ar-render-0")},
        rule("gpu-temperature", "70", "80"),
        "Error",
        None,
        "no provider for rule gpu-temperature",
    )
    evaluate(
        "a request without a rule",
        {"renderer": pod("ar-render-0")},
        None,
        "Error",
        None,
        "the request carries no rule",
    )

    renderer = pod("ar-render-9")
    # 1ms, 3ms, 11.5ms and (metro-1 -> edge-1 -> stadium) 3ms to the stadium, against a
    # request of 2ms and a limit of 5ms: cost (v - 2) / 3 * 1000, -1 past the limit.
    costs(
        "latency to the stadium",
        renderer,
        rule("latency", "2ms", "5ms"),
        ["stadium"],
        ["edge-1-a", "edge-2-a", "edge-9-a", "metro-1-a"],
        [("edge-1-a", 0), ("edge-2-a", 333), ("edge-9-a", -1), ("metro-1-a", 333)],
    )
    costs(
        "cpu",
        renderer,
        rule("cpu", "8", "4"),
        [],
        ["edge-1-a", "edge-2-a", "edge-9-a", "no-such-node"],
        [("edge-1-a", 0), ("edge-2-a", 0), ("edge-9-a", 1000), ("no-such-node", -1)],
    )
    try:
        stub.EndpointCost(
            pb.EndpointCostRequest(source=renderer, rule=rule("gpu-temperature", "70"),
                                   eligibleNodes=["edge-1-a"]),
            timeout=10,
        )
        failures.append("EndpointCost for a rule without a provider did not fail")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNIMPLEMENTED:
            failures.append(f"EndpointCost without a provider: {error.code()}, expected UNIMPLEMENTED")
        else:
            passed.append("EndpointCost without a provider")
            print(f"ok   EndpointCost without a provider: {error.code()} ({error.details()})")

    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{args.flavour}: {len(passed)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
