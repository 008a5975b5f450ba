//! Evaluation. `plan` walks the graph iteratively (no recursion: a chain of a million nodes is
//! fine) from the requested outputs, claims every unscheduled node (status -> scheduled) and
//! orders them so inputs come first. `execute` runs the tape: each node's kernel, then its
//! status becomes evaluated and it is detached from its inputs, so the graph is freed as it goes.
//!
//! `eval` plans and executes on the calling thread. `asyncEval` plans on the calling thread
//! and hands the tape to the stream's worker thread, returning a ticket the host polls; the
//! host keeps running meanwhile. A node claimed by an in-flight task is waited for, never
//! computed twice. If a kernel fails (out of memory, say), the nodes not yet computed go back
//! to unscheduled, so a later eval can retry them: nothing is left half-done.
const std = @import("std");
const array = @import("array.zig");
const errors = @import("errors.zig");
const stream_mod = @import("stream.zig");
const Node = array.Node;

const a = std.heap.c_allocator;

var plan_mutex: std.Thread.Mutex = .{};
var plan_epoch: u32 = 0;

// Completion of in-flight nodes is announced here.
var progress_mutex: std.Thread.Mutex = .{};
var progress_cond: std.Thread.Condition = .{};

const Tape = struct {
    nodes: std.ArrayList(*Node) = .empty,
    /// Nodes claimed by other in-flight tasks that this tape needs.
    waits: std.ArrayList(*Node) = .empty,
    /// The outputs, retained so the host may drop its handles while a task runs.
    outputs: std.ArrayList(*Node) = .empty,

    fn deinit(t: *Tape) void {
        for (t.outputs.items) |n| array.release(n);
        for (t.waits.items) |n| array.release(n);
        t.nodes.deinit(a);
        t.waits.deinit(a);
        t.outputs.deinit(a);
    }
};

fn oom() errors.Error {
    return errors.fail(.out_of_memory, "[eval] Out of memory while planning the graph.", .{});
}

fn plan(outputs: []const *Node) errors.Error!Tape {
    var tape = Tape{};
    errdefer tape.deinit();
    tape.outputs.ensureTotalCapacity(a, outputs.len) catch return oom();
    for (outputs) |o| {
        o.retain();
        tape.outputs.appendAssumeCapacity(o);
    }
    plan_mutex.lock();
    defer plan_mutex.unlock();
    plan_epoch +%= 1;
    if (plan_epoch == 0) plan_epoch = 1;
    const epoch = plan_epoch;

    const Item = struct { node: *Node, expanded: bool };
    var stack: std.ArrayList(Item) = .empty;
    defer stack.deinit(a);
    for (outputs) |o| stack.append(a, .{ .node = o, .expanded = false }) catch return oom();
    errdefer for (tape.nodes.items) |n| n.status.store(.unscheduled, .release);
    while (stack.pop()) |item| {
        const n = item.node;
        if (item.expanded) {
            n.status.store(.scheduled, .release);
            tape.nodes.append(a, n) catch return oom();
            continue;
        }
        if (n.mark == epoch) continue;
        n.mark = epoch;
        switch (n.status.load(.acquire)) {
            .evaluated => continue,
            .scheduled => {
                n.retain();
                tape.waits.append(a, n) catch {
                    array.release(n);
                    return oom();
                };
                continue;
            },
            .unscheduled => {},
        }
        stack.append(a, .{ .node = n, .expanded = true }) catch return oom();
        // The deepest input is popped (computed) first: a shallow input (cos(h) beside a long
        // backward chain) is then computed just before its consumer instead of being held
        // through the whole chain. This is what keeps a gradient's peak memory near the
        // forward values it needs (and lets checkpoint lower it).
        const from = stack.items.len;
        for (n.inputs) |in| {
            if (in.mark != epoch) stack.append(a, .{ .node = in, .expanded = false }) catch return oom();
        }
        const pushed = stack.items[from..];
        // Stable insertion sort by depth, ascending (inputs are few); equal depths keep their order.
        var i: usize = 1;
        while (i < pushed.len) : (i += 1) {
            const held = pushed[i];
            var j = i;
            while (j > 0 and pushed[j - 1].node.depth > held.node.depth) : (j -= 1) pushed[j] = pushed[j - 1];
            pushed[j] = held;
        }
    }
    return tape;
}

/// Wait for nodes another task is computing. False if one of them failed and went back to
/// unscheduled (then the caller plans again and computes it itself).
fn waitFor(nodes: []const *Node) bool {
    progress_mutex.lock();
    defer progress_mutex.unlock();
    for (nodes) |n| {
        while (n.status.load(.acquire) == .scheduled) progress_cond.wait(&progress_mutex);
        if (n.status.load(.acquire) != .evaluated) return false;
    }
    return true;
}

/// Wait until no in-flight task is computing `n` (its status is not `scheduled`), so its graph
/// (inputs, primitive) can be read without racing the worker that detaches it.
pub fn settle(n: *Node) void {
    if (n.status.load(.acquire) != .scheduled) return;
    progress_mutex.lock();
    defer progress_mutex.unlock();
    while (n.status.load(.acquire) == .scheduled) progress_cond.wait(&progress_mutex);
}

fn announce() void {
    progress_mutex.lock();
    progress_cond.broadcast();
    progress_mutex.unlock();
}

fn execute(tape: *Tape) errors.Error!void {
    defer announce();
    for (tape.nodes.items, 0..) |n, i| {
        n.prim.eval(n) catch |e| {
            // A kernel may fail after taking its output buffer: give it back.
            if (n.buffer) |b| {
                b.release();
                n.buffer = null;
            }
            for (tape.nodes.items[i..]) |rest| rest.status.store(.unscheduled, .release);
            return e;
        };
        // Detach before publishing: a thread that sees the node evaluated (settle, waitFor)
        // may read its inputs and primitive at once, and must not find them being freed.
        if (!array.keepsGraph(n)) n.detach();
        n.status.store(.evaluated, .release);
    }
}

/// Plan and run until every output is evaluated (retrying past failed foreign tasks).
fn run(outputs: []const *Node) errors.Error!void {
    try @import("compile.zig").checkEval(outputs);
    while (true) {
        var tape = try plan(outputs);
        defer tape.deinit();
        if (!waitFor(tape.waits.items)) {
            // Whatever we claimed goes back; plan again now that the failed nodes are free.
            for (tape.nodes.items) |n| n.status.store(.unscheduled, .release);
            announce();
            continue;
        }
        return execute(&tape);
    }
}

pub fn eval(outputs: []const *Node) errors.Error!void {
    for (outputs) |o| {
        if (!o.isEvaluated()) return run(outputs);
    }
}

/// Make sure one node is readable: evaluate it, or wait for the task computing it.
pub fn ensure(n: *Node) errors.Error!void {
    if (n.isEvaluated()) return;
    return run(&.{n});
}

// ---------------------------------------------------------------------------------------
// Asynchronous evaluation: one worker thread per stream, started on first use.

pub const TicketState = enum(i32) { pending = 0, done = 1, failed = -1 };

const Ticket = struct {
    state: std.atomic.Value(TicketState) = .init(.pending),
    code: errors.Code = .ok,
    message: [1024]u8 = undefined,
    message_len: usize = 0,
};

const Task = struct {
    tape: Tape,
    ticket: *Ticket,
};

const Worker = struct {
    mutex: std.Thread.Mutex = .{},
    cond: std.Thread.Condition = .{},
    queue: std.ArrayList(Task) = .empty,
    thread: ?std.Thread = null,
};

var workers_mutex: std.Thread.Mutex = .{};
var workers: [1024]?*Worker = [_]?*Worker{null} ** 1024;

var tickets_mutex: std.Thread.Mutex = .{};
var tickets: std.AutoHashMapUnmanaged(u32, *Ticket) = .empty;
var next_ticket: u32 = 1;

fn workerLoop(w: *Worker) void {
    while (true) {
        w.mutex.lock();
        while (w.queue.items.len == 0) w.cond.wait(&w.mutex);
        var task = w.queue.orderedRemove(0);
        w.mutex.unlock();
        runTask(&task);
    }
}

fn runTask(task: *Task) void {
    defer task.tape.deinit();
    var ok = true;
    if (!waitFor(task.tape.waits.items)) {
        // A task we depended on failed: compute everything ourselves.
        for (task.tape.nodes.items) |n| n.status.store(.unscheduled, .release);
        announce();
        run(task.tape.outputs.items) catch {
            ok = false;
        };
    } else {
        execute(&task.tape) catch {
            ok = false;
        };
    }
    if (!ok) {
        const msg = errors.messageSlice();
        task.ticket.code = errors.code();
        task.ticket.message_len = @min(msg.len, task.ticket.message.len);
        @memcpy(task.ticket.message[0..task.ticket.message_len], msg[0..task.ticket.message_len]);
    }
    task.ticket.state.store(if (ok) .done else .failed, .release);
}

fn workerFor(s: u32) errors.Error!*Worker {
    workers_mutex.lock();
    defer workers_mutex.unlock();
    if (workers[s]) |w| return w;
    const w = a.create(Worker) catch return errors.fail(.out_of_memory, "[async_eval] Out of memory.", .{});
    w.* = .{};
    w.thread = std.Thread.spawn(.{}, workerLoop, .{w}) catch {
        a.destroy(w);
        return errors.fail(.runtime, "[async_eval] Could not start the stream's worker thread.", .{});
    };
    w.thread.?.detach();
    workers[s] = w;
    return w;
}

/// Start evaluating `outputs` on `s`'s worker; returns a ticket to poll with `ticketState`.
pub fn asyncEval(outputs: []const *Node, s: u32) errors.Error!u32 {
    const ticket = a.create(Ticket) catch return errors.fail(.out_of_memory, "[async_eval] Out of memory.", .{});
    ticket.* = .{};
    var tape = plan(outputs) catch |e| {
        a.destroy(ticket);
        return e;
    };
    const id = blk: {
        tickets_mutex.lock();
        defer tickets_mutex.unlock();
        const id = next_ticket;
        next_ticket = if (next_ticket >= std.math.maxInt(i32)) 1 else next_ticket + 1;
        tickets.put(a, id, ticket) catch {
            for (tape.nodes.items) |n| n.status.store(.unscheduled, .release);
            tape.deinit();
            a.destroy(ticket);
            return errors.fail(.out_of_memory, "[async_eval] Out of memory.", .{});
        };
        break :blk id;
    };
    if (tape.nodes.items.len == 0 and tape.waits.items.len == 0) {
        tape.deinit();
        ticket.state.store(.done, .release);
        return id;
    }
    const w = workerFor(s) catch |e| {
        for (tape.nodes.items) |n| n.status.store(.unscheduled, .release);
        tape.deinit();
        ticket.state.store(.failed, .release);
        return e;
    };
    w.mutex.lock();
    defer w.mutex.unlock();
    w.queue.append(a, .{ .tape = tape, .ticket = ticket }) catch {
        for (tape.nodes.items) |n| n.status.store(.unscheduled, .release);
        tape.deinit();
        ticket.state.store(.failed, .release);
        return errors.fail(.out_of_memory, "[async_eval] Out of memory.", .{});
    };
    w.cond.signal();
    return id;
}

/// 0 pending, 1 done, -1 failed (the error is then set on this thread), -2 unknown ticket.
pub fn ticketState(id: u32) i32 {
    tickets_mutex.lock();
    const t = tickets.get(id);
    tickets_mutex.unlock();
    const ticket = t orelse {
        errors.set(.invalid_argument, "[async_eval] Unknown ticket {d}.", .{id});
        return -2;
    };
    const st = ticket.state.load(.acquire);
    if (st == .failed) errors.setText(ticket.code, ticket.message[0..ticket.message_len]);
    return @intFromEnum(st);
}

/// Forget a finished ticket. A pending one cannot be freed.
pub fn ticketFree(id: u32) errors.Error!void {
    tickets_mutex.lock();
    defer tickets_mutex.unlock();
    const t = tickets.get(id) orelse return errors.fail(.invalid_argument, "[async_eval] Unknown ticket {d}.", .{id});
    if (t.state.load(.acquire) == .pending) return errors.fail(.invalid_argument, "[async_eval] Ticket {d} is still pending.", .{id});
    _ = tickets.remove(id);
    a.destroy(t);
}

/// Wait until every task queued so far on stream `s` (or on all streams) has finished.
pub fn synchronize(s: ?u32) void {
    const first: usize = if (s) |x| x else 0;
    const last: usize = if (s) |x| x + 1 else workers.len;
    for (first..last) |i| {
        workers_mutex.lock();
        const w = workers[i];
        workers_mutex.unlock();
        const worker = w orelse continue;
        // Enqueue a marker task and wait for its ticket.
        var ticket = Ticket{};
        worker.mutex.lock();
        worker.queue.append(a, .{ .tape = .{}, .ticket = &ticket }) catch {
            worker.mutex.unlock();
            continue;
        };
        worker.cond.signal();
        worker.mutex.unlock();
        while (ticket.state.load(.acquire) == .pending) std.Thread.sleep(20 * std.time.ns_per_us);
    }
}
