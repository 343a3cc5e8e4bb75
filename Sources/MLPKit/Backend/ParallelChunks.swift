#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if os(Linux)
import Synchronization

/// Runs a large element-wise pass as chunks that the calling thread and helper threads claim
/// one at a time, so that the other core works during the CPU backend's memory-bound passes
/// (Adam over the wide configuration's 8.4M parameters) instead of idling between products.
///
/// Every element is computed by exactly the same code whichever thread takes its chunk, so the
/// results are bit for bit those of one thread. The calling thread claims chunks too and only
/// waits for chunks a helper has already started: a helper that wakes late (or never, on a busy
/// machine) finds nothing left to claim, and the pass takes as long as on one thread.
///
/// Helpers sleep on a semaphore between passes (no spinning, so they never compete with the
/// BLAS library's own threads during a product). One pass runs at a time; a pass started while
/// another is running (another thread's backend) runs on its caller alone.
final class ParallelChunks: @unchecked Sendable {
    /// A chunk's work: `body(context, start, end)` handles elements start..<end.
    typealias Body = @convention(c) (UnsafeRawPointer, Int, Int) -> Void

    /// The process's pool, or nil on a one-core machine. `MLPKIT_HELPER_THREADS=N` sets the
    /// number of helper threads (0: every pass on the calling thread); the default is one per
    /// other online core, at most 7.
    static let shared: ParallelChunks? = {
        let processors = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var helpers = min(max(processors - 1, 0), 7)
        if let value = getenv("MLPKIT_HELPER_THREADS").flatMap({ Int(String(cString: $0)) }), value >= 0 {
            helpers = min(value, 64)
        }
        return helpers > 0 ? ParallelChunks(helpers: helpers) : nil
    }()

    let helpers: Int
    // generation << 32 | next unclaimed chunk (or, in an owned pass, a bit for each chunk
    // claimed): a claim is a compare-and-swap that fails for a helper still holding an earlier
    // pass's job
    private let claims = Atomic<UInt64>(0)
    private let finished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    // the latest generation published, and how many helpers are asleep (or about to be)
    private let published = Atomic<UInt64>(0)
    private let sleeping = Atomic<Int>(0)
    /// How long helpers poll (yielding the core) after a pass with `staysAwake`.
    static let awakeSeconds = 0.0005
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<sem_t>
    private var started = false
    // the current job, written and read under `mutex`
    private var job = Job(generation: 0, body: nil, context: nil, count: 0, chunk: 1, chunks: 0, staysAwake: false, owned: false)

    private struct Job {
        var generation: UInt64
        var body: Body?
        var context: UnsafeRawPointer?
        var count: Int
        var chunk: Int
        var chunks: Int
        var staysAwake: Bool
        var owned: Bool
    }

    private init(helpers: Int) {
        self.helpers = helpers
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        wake = .allocate(capacity: 1)
        sem_init(wake, 0, 0)
    }

    private func startHelpers() {
        started = true
        for index in 1..<(helpers + 1) {
            var thread = pthread_t()
            let start = Unmanaged.passRetained(HelperStart(pool: self, index: index)).toOpaque()
            let result = pthread_create(&thread, nil, { argument in
                let start = Unmanaged<HelperStart>.fromOpaque(argument!).takeRetainedValue()
                start.pool.helperLoop(index: start.index)
            }, start)
            if result == 0 {
                pthread_detach(thread)
            } else {
                Unmanaged<HelperStart>.fromOpaque(start).release()
            }
        }
    }

    /// A helper's pool and its index (1, 2, …; the calling thread is 0).
    private final class HelperStart {
        let pool: ParallelChunks
        let index: Int
        init(pool: ParallelChunks, index: Int) {
            self.pool = pool
            self.index = index
        }
    }

    private func helperLoop(index: Int) -> Never {
        var done: UInt64 = 0
        var awakeUntil = 0.0
        while true {
            if published.load(ordering: .acquiring) == done {
                if awakeUntil > 0, Self.now() < awakeUntil {
                    sched_yield()
                    continue
                }
                awakeUntil = 0
                // announce the sleep, then look once more: `run` publishes, then counts sleepers
                sleeping.add(1, ordering: .sequentiallyConsistent)
                if published.load(ordering: .sequentiallyConsistent) == done {
                    while sem_wait(wake) != 0 {}  // EINTR
                }
                sleeping.subtract(1, ordering: .sequentiallyConsistent)
                continue
            }
            pthread_mutex_lock(mutex)
            let current = job
            pthread_mutex_unlock(mutex)
            guard current.generation != done, let body = current.body, let context = current.context else { continue }
            done = current.generation
            claimChunks(current.generation, body: body, context: context, count: current.count, chunk: current.chunk,
                        chunks: current.chunks, owned: current.owned, index: index)
            awakeUntil = current.staysAwake ? Self.now() + Self.awakeSeconds : 0
        }
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    func run(count: Int, chunk: Int, staysAwake: Bool = false, owned: Bool = false, context: UnsafeRawPointer, _ body: Body) {
        let chunks = (count + chunk - 1) / chunk
        guard chunks > 1, chunks < (owned ? 32 : 1 << 31), busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            // the same chunks on this thread (a split product's bits depend on its blocks)
            Self.inOrder(count: count, chunk: chunk, context: context, body)
            return
        }
        if !started { startHelpers() }
        pthread_mutex_lock(mutex)
        let generation = (job.generation + 1) & 0xFFFF_FFFF
        job = Job(generation: generation == 0 ? 1 : generation, body: body, context: context, count: count, chunk: chunk,
                  chunks: chunks, staysAwake: staysAwake, owned: owned)
        let current = job
        finished.store(0, ordering: .relaxed)
        claims.store(current.generation << 32, ordering: .releasing)
        pthread_mutex_unlock(mutex)
        published.store(current.generation, ordering: .sequentiallyConsistent)
        let sleepers = sleeping.load(ordering: .sequentiallyConsistent)
        for _ in 0..<min(max(sleepers, 0), helpers) { sem_post(wake) }
        claimChunks(current.generation, body: body, context: context, count: count, chunk: chunk, chunks: chunks, owned: owned,
                    index: 0)
        // wait only for chunks a helper has claimed and not yet finished
        var spins = 0
        while finished.load(ordering: .acquiring) < chunks {
            spins += 1
            if spins & 255 == 0 { sched_yield() }
        }
        busy.store(false, ordering: .releasing)
    }

    private func claimChunks(_ generation: UInt64, body: Body, context: UnsafeRawPointer, count: Int, chunk: Int, chunks: Int,
                             owned: Bool, index: Int) {
        if owned {
            claimOwnedChunks(generation, body: body, context: context, count: count, chunk: chunk, chunks: chunks, index: index)
            return
        }
        var value = claims.load(ordering: .acquiring)
        while value >> 32 == generation, Int(value & 0xFFFF_FFFF) < chunks {
            let (exchanged, original) = claims.weakCompareExchange(
                expected: value, desired: value + 1, successOrdering: .acquiringAndReleasing, failureOrdering: .acquiring)
            guard exchanged else {
                value = original
                continue
            }
            let start = Int(value & 0xFFFF_FFFF) * chunk
            body(context, start, min(start + chunk, count))
            finished.add(1, ordering: .releasing)
            value = claims.load(ordering: .acquiring)
        }
    }

    /// An owned pass's claims: the low 32 bits of `claims` hold a bit for each chunk claimed.
    /// Thread `index` takes chunk `index` first (the calling thread 0, helper i chunk i), then any
    /// chunk left, lowest first: a block stays with the same thread from pass to pass while
    /// every thread keeps up, and a late or missing one's is taken by the others.
    private func claimOwnedChunks(_ generation: UInt64, body: Body, context: UnsafeRawPointer, count: Int, chunk: Int, chunks: Int,
                                  index: Int) {
        let all: UInt64 = (1 << UInt64(chunks)) - 1
        var value = claims.load(ordering: .acquiring)
        while value >> 32 == generation, value & all != all {
            let free = ~value & all
            let own: UInt64 = index < chunks ? 1 << UInt64(index) : 0
            let bit = free & own != 0 ? own : free & (~free &+ 1)
            let (exchanged, original) = claims.weakCompareExchange(
                expected: value, desired: value | bit, successOrdering: .acquiringAndReleasing, failureOrdering: .acquiring)
            guard exchanged else {
                value = original
                continue
            }
            let start = bit.trailingZeroBitCount * chunk
            body(context, start, min(start + chunk, count))
            finished.add(1, ordering: .releasing)
            value = claims.load(ordering: .acquiring)
        }
    }
}
#else
/// Elsewhere (`Synchronization.Atomic` needs macOS 15, above this package's deployment
/// target) every pass runs on the calling thread.
final class ParallelChunks: @unchecked Sendable {
    typealias Body = @convention(c) (UnsafeRawPointer, Int, Int) -> Void
    static let shared: ParallelChunks? = nil
    let helpers = 0

    func run(count: Int, chunk: Int, staysAwake: Bool = false, owned: Bool = false, context: UnsafeRawPointer, _ body: Body) {
        Self.inOrder(count: count, chunk: chunk, context: context, body)
    }
}
#endif

/// The passes, on every platform: `shared` (the pool, where there is one) or the calling thread.
extension ParallelChunks {
    /// The threads a parallel pass runs on: the calling thread and the pool's helpers.
    static var threads: Int { (shared?.helpers ?? 0) + 1 }

    /// The chunk that cuts 0..<extent into `pieces` blocks as even as whole multiples of
    /// `multiple` allow (at least one multiple): the blocks of a split product or gather.
    static func blockWidth(_ extent: Int, pieces: Int, multiple: Int = 1) -> Int {
        max(multiple, ((extent + pieces - 1) / pieces + multiple - 1) / multiple * multiple)
    }

    /// Runs `body` over 0..<count in chunks of `chunk` elements: on the pool when `parallel`
    /// and there is one, else the same chunks one after another on the calling thread (so that
    /// a split product's bits never depend on the number of cores).
    /// `staysAwake`: the helpers poll for the next pass for `awakeSeconds` before sleeping, so
    /// that a run of split products (the mnist step's) does not pay a wake-up each.
    /// `owned`: chunk i goes first to thread i (the calling thread 0, then the helpers in order),
    /// so that a pass cut the same way as the one before it gives each thread the same blocks (at
    /// most 31 chunks; more run on the calling thread alone).
    @inline(__always)
    static func forEach(count: Int, chunk: Int, parallel: Bool, staysAwake: Bool = false, owned: Bool = false,
                        context: UnsafeRawPointer, _ body: Body) {
        if parallel, count > chunk, let pool = shared {
            pool.run(count: count, chunk: chunk, staysAwake: staysAwake, owned: owned, context: context, body)
        } else {
            inOrder(count: count, chunk: chunk, context: context, body)
        }
    }

    /// `body` over the chunks of 0..<count in order, on the calling thread.
    static func inOrder(count: Int, chunk: Int, context: UnsafeRawPointer, _ body: Body) {
        var start = 0
        while start < count {
            body(context, start, min(start + max(chunk, 1), count))
            start += max(chunk, 1)
        }
    }

    /// Element-wise passes over at least this many elements (1 MiB of Float32) are split.
    static let elementwiseThreshold = 1 << 18
    /// Elements per chunk of a split element-wise pass (256 KiB of Float32).
    static let elementwiseChunk = 1 << 16

    /// `body(context, start, end)` over 0..<count, split across threads when `count` is at
    /// least `elementwiseThreshold`.
    @inline(__always)
    static func elementwise(count: Int, context: UnsafeRawPointer, _ body: Body) {
        forEach(count: count, chunk: elementwiseChunk, parallel: count >= elementwiseThreshold, context: context, body)
    }

    /// `body(context, start, end)` over rows 0..<rows of a rows×columns matrix, split across
    /// threads in whole rows when the matrix has at least `elementwiseThreshold` elements: blocks
    /// of about `elementwiseChunk` elements, a multiple of `multiple` rows (a kernel's row block).
    @inline(__always)
    static func rows(_ rows: Int, columns: Int, multiple: Int = 1, context: UnsafeRawPointer, _ body: Body) {
        forEach(count: rows, chunk: max(multiple, elementwiseChunk / max(columns, 1) / multiple * multiple),
                parallel: rows * columns >= elementwiseThreshold, context: context, body)
    }
}
