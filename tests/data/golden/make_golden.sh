#!/usr/bin/env bash
# Decode every crafted capture and the three real samples with tshark (an independent decoder) into golden CSV
# files that tests/ingest/test_golden.py compares darkembed's reader against. The goldens are committed, so CI
# needs no tshark; rerun this after changing tests/data/captures/make_captures.py.
#
#   tests/data/golden/make_golden.sh            # from the repository root; tshark 4.0 (Debian 12) made them
#
# One row per tshark frame, header row, "," separator, first occurrence of each field (the outer header of ICMP
# errors and IP-in-IP). The raw tshark values are kept; the test does the conversions to PACKETS.
# Preferences that could change what is dissected are switched off: no IP reassembly (a non-first fragment stays
# a fragment without ports), no TCP reassembly or sequence analysis, raw sequence numbers, no name resolution.
set -euo pipefail
cd "$(dirname "$0")/../../.."
HERE=tests/data/golden
CAPS=tests/data/captures
SAMPLES=${DARKEMBED_SHARED_DATA:-../shared/data}/pcap

FIELDS=(
    frame.number frame.encap_type frame.protocols frame.time_epoch
    ip.src ip.dst ip.proto ip.len ip.ttl ip.id ip.frag_offset ip.flags
    tcp.srcport tcp.dstport udp.srcport udp.dstport
    tcp.flags tcp.seq_raw tcp.ack_raw tcp.window_size_value
    tcp.options.mss_val tcp.options.wscale.shift tcp.options.sack_perm tcp.options.timestamp.tsval
    icmp.type icmp.code
)

decode() {
    local args=()
    for f in "${FIELDS[@]}"; do args+=(-e "$f"); done
    tshark -n -r "$1" \
        -o ip.defragment:FALSE -o tcp.desegment_tcp_streams:FALSE -o tcp.analyze_sequence_numbers:FALSE \
        -o tcp.relative_sequence_numbers:FALSE -o tcp.try_heuristic_first:FALSE -o udp.try_heuristic_first:FALSE \
        -T fields -E header=y -E separator=, -E occurrence=f -E quote=n "${args[@]}" 2>/dev/null
}

tshark --version | head -1 >"$HERE/TSHARK_VERSION"

for cap in "$CAPS"/*.pcap "$CAPS"/*.pcapng "$CAPS"/*.gz; do
    decode "$cap" >"$HERE/$(basename "$cap").csv"
done

for name in stopddos_pkt.TCP.synflood.spoofed.pcap stopddos_amp.TCP.reflection.SYNACK.pcap \
    stopddos_pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng; do
    decode "$SAMPLES/$name" | gzip -n -9 >"$HERE/$name.csv.gz"
done
