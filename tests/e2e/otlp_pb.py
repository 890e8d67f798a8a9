"""OTLP's protobuf encoding, decoded for the test receivers: the protobuf
wire format (varint, fixed64, length-delimited, fixed32) and the field
numbers of opentelemetry-proto's ExportTraceServiceRequest (trace/v1,
common/v1, resource/v1), written from the .proto files. decode_traces()
gives the request in OTLP's JSON mapping (hex ids, 64-bit integers as
decimal strings, enum integers, lowerCamelCase), so one set of checks reads
both encodings."""
import struct


def _varint(buf, i):
    shift = v = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint at %d" % i)
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def fields(buf):
    """[(field number, wire type, value)]: ints for varint / fixed, bytes for
    length-delimited. Raises ValueError on anything the wire format forbids."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            if i + 8 > len(buf):
                raise ValueError("truncated fixed64")
            v, i = struct.unpack_from("<Q", buf, i)[0], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated length-delimited field")
            v, i = bytes(buf[i:i + n]), i + n
        elif wt == 5:
            if i + 4 > len(buf):
                raise ValueError("truncated fixed32")
            v, i = struct.unpack_from("<I", buf, i)[0], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.append((num, wt, v))
    return out


def _int64(u):
    return u - (1 << 64) if u >= 1 << 63 else u


def any_value(buf):
    """common.v1.AnyValue: string 1, bool 2, int 3, double 4, array 5,
    kvlist 6, bytes 7."""
    for num, wt, v in fields(buf):
        if num == 1 and wt == 2:
            return {"stringValue": v.decode("utf-8")}
        if num == 2 and wt == 0:
            return {"boolValue": bool(v)}
        if num == 3 and wt == 0:
            return {"intValue": str(_int64(v))}
        if num == 4 and wt == 1:
            return {"doubleValue": struct.unpack("<d", struct.pack("<Q", v))[0]}
        if num == 5 and wt == 2:
            return {"arrayValue": {"values": [any_value(x) for n, _, x in fields(v)
                                              if n == 1]}}
        if num == 6 and wt == 2:
            return {"kvlistValue": {"values": [key_value(x) for n, _, x in fields(v)
                                               if n == 1]}}
        if num == 7 and wt == 2:
            return {"bytesValue": v.hex()}
    return {}


def key_value(buf):
    """common.v1.KeyValue: key 1, value 2."""
    kv = {"key": "", "value": {}}
    for num, wt, v in fields(buf):
        if num == 1 and wt == 2:
            kv["key"] = v.decode("utf-8")
        elif num == 2 and wt == 2:
            kv["value"] = any_value(v)
    return kv


def _event(buf):
    """trace.v1.Span.Event: time 1 (fixed64), name 2, attributes 3."""
    ev = {"attributes": []}
    for num, wt, v in fields(buf):
        if num == 1 and wt == 1:
            ev["timeUnixNano"] = str(v)
        elif num == 2 and wt == 2:
            ev["name"] = v.decode("utf-8")
        elif num == 3 and wt == 2:
            ev["attributes"].append(key_value(v))
    return ev


def _status(buf):
    """trace.v1.Status: message 2, code 3 (1 is reserved)."""
    st = {}
    for num, wt, v in fields(buf):
        if num == 2 and wt == 2:
            st["message"] = v.decode("utf-8")
        elif num == 3 and wt == 0:
            st["code"] = v
        elif num == 1:
            raise ValueError("Status field 1 is reserved")
    return st


def _id(v, n, what):
    if len(v) != n:
        raise ValueError("%s of %d bytes" % (what, len(v)))
    return v.hex()


def span(buf):
    """trace.v1.Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
    name 5, kind 6, start 7 and end 8 (fixed64), attributes 9, events 11,
    status 15, flags 16 (fixed32)."""
    sp = {"attributes": [], "events": []}
    for num, wt, v in fields(buf):
        if num == 1 and wt == 2:
            sp["traceId"] = _id(v, 16, "trace_id")
        elif num == 2 and wt == 2:
            sp["spanId"] = _id(v, 8, "span_id")
        elif num == 3 and wt == 2:
            sp["traceState"] = v.decode("utf-8")
        elif num == 4 and wt == 2:
            if v:
                sp["parentSpanId"] = _id(v, 8, "parent_span_id")
        elif num == 5 and wt == 2:
            sp["name"] = v.decode("utf-8")
        elif num == 6 and wt == 0:
            sp["kind"] = v
        elif num == 7 and wt == 1:
            sp["startTimeUnixNano"] = str(v)
        elif num == 8 and wt == 1:
            sp["endTimeUnixNano"] = str(v)
        elif num == 9 and wt == 2:
            sp["attributes"].append(key_value(v))
        elif num == 11 and wt == 2:
            sp["events"].append(_event(v))
        elif num == 15 and wt == 2:
            sp["status"] = _status(v)
        elif num == 16 and wt == 5:
            sp["flags"] = v
        elif num in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 15, 16):
            raise ValueError("Span field %d with wire type %d" % (num, wt))
    return sp


def decode_traces(body):
    """collector.trace.v1.ExportTraceServiceRequest: resource_spans 1;
    ResourceSpans: resource 1 (Resource: attributes 1), scope_spans 2;
    ScopeSpans: scope 1 (InstrumentationScope: name 1, version 2), spans 2."""
    out = {"resourceSpans": []}
    for num, wt, rs_buf in fields(body):
        if num != 1 or wt != 2:
            continue
        rs = {"resource": {"attributes": []}, "scopeSpans": []}
        for n2, w2, v2 in fields(rs_buf):
            if n2 == 1 and w2 == 2:
                rs["resource"]["attributes"] = [key_value(x) for n, _, x in fields(v2)
                                                if n == 1]
            elif n2 == 2 and w2 == 2:
                ss = {"scope": {}, "spans": []}
                for n3, w3, v3 in fields(v2):
                    if n3 == 1 and w3 == 2:
                        for n4, _, v4 in fields(v3):
                            if n4 in (1, 2):
                                ss["scope"]["name" if n4 == 1 else "version"] = \
                                    v4.decode("utf-8")
                    elif n3 == 2 and w3 == 2:
                        ss["spans"].append(span(v3))
                rs["scopeSpans"].append(ss)
        out["resourceSpans"].append(rs)
    return out
