// Native Verilator harness for pulsegate_core: trains on a file of samples at full simulation
// speed and dumps the complete state (through the debug port) at sample boundaries. Python
// (sim/fast_run.py) writes the input, runs this, and compares every dump with the golden model.
//
// The core sits in pulsegate_fast (written by sim/fast_run.py): it registers every input and
// makes the reset itself, so no logic of the core depends on a top-level input. Verilator
// would otherwise evaluate each such cone (all next-state logic depends on rst) again at both
// clock edges. Inputs therefore reach the core one clock after they are set here.
//
// Input (little-endian int32): n_samples, words_per_sample, state_words, payload_width,
// read_every, outputs, then n_samples * words_per_sample input words. A read_every of 0
// reads every tick boundary too (below) and every sample.
// Output (little-endian): for every sample k with (k + 1) % read_every == 0 or k the last one,
// int32 k, state_words int64 words and the readout's outputs int64 words (built with
// PULSEGATE_OUTPUTS: the top picks one on out_word by out_sel); then int32 -1, the compute
// cycles of every sample (int64 each, from start to sample_done), and the total clocks
// simulated (int64).
// Progress: "progress DONE TOTAL" on stderr after every twentieth of the samples.
//
// A core that takes input words while it runs (the memory core's two input banks: load_ready
// while running) gets the next sample's words then, a word a clock, as a board's link streams
// them. Every sample must show state_valid (its ticks' state, or its last tick's), as many
// clocks of it as the first sample did, and none in its first clock.
//
// As a host would, the harness waits between samples (0 to 2 idle clocks before a start, by
// the sample's number) and holds some samples' state (every fourth from the second: `hold`
// from the start until state_valid has shown for 1 to 3 clocks): the core must keep its
// state valid while held and resume after. A held sample's cycles leave out the clocks it
// was held (the clocks of state_valid beyond the first sample's), so they stay the
// micro-code's.
//
// Per tick (read_every 0): `hold` stays high through a sample, so the core stops at each
// tick boundary with its state valid; the harness reads the whole state there (int32 -2,
// int32 the tick's number from the first sample's first, state_words int64 words), then
// lets `hold` down for one clock. No random pauses or holds then, and a sample's cycles
// count the reading clocks too (the same in every run of a harness).
//
// Built with PULSEGATE_MUTANTS (sim/mutation.py), the top has a mutsel input that picks one
// mutation of the core (0: none): argv[3] is that number and argv[4] the most clocks a sample
// may take before the run counts as hung (exit 3).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "Vpulsegate_fast.h"
#include "verilated.h"

static void fail(const char* what) {
    std::fprintf(stderr, "harness: %s\n", what);
    std::exit(2);
}

int main(int argc, char** argv) {
#ifdef PULSEGATE_MUTANTS
    if (argc != 5) fail("usage: harness INPUT OUTPUT MUTANT MAX_CLOCKS");
    const int64_t max_clocks = std::atoll(argv[4]);
#else
    if (argc != 3) fail("usage: harness INPUT OUTPUT");
    const int64_t max_clocks = 100000000;
#endif
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) fail("cannot open the input file");
    int32_t header[6];
    if (std::fread(header, sizeof(int32_t), 6, in) != 6) fail("short header");
    const int32_t n_samples = header[0], words = header[1], state_words = header[2];
    const int32_t width = header[3], read_every = header[4], outputs = header[5];
    if (n_samples < 0 || words < 1 || state_words < 1 || width < 1 || width > 32 || read_every < 0)
        fail("bad header");
    const bool per_tick = read_every == 0;
#ifdef PULSEGATE_OUTPUTS
    if (outputs < 1) fail("bad header: a readout is built in");
#else
    if (outputs != 0) fail("bad header: no readout is built in");
#endif
    std::vector<int32_t> inputs(static_cast<size_t>(n_samples) * words);
    if (std::fread(inputs.data(), sizeof(int32_t), inputs.size(), in) != inputs.size())
        fail("short input");
    std::fclose(in);
    FILE* out = std::fopen(argv[2], "wb");
    if (!out) fail("cannot open the output file");

    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vpulsegate_fast>(context.get());
    int64_t clocks = 0;
    auto tick = [&]() {  // one rising edge; inputs set before it are sampled by it
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        ++clocks;
    };
    const uint32_t mask = width == 32 ? 0xFFFFFFFFu : ((1u << width) - 1u);

#ifdef PULSEGATE_MUTANTS
    top->mutsel = static_cast<uint32_t>(std::atoi(argv[3]));
#endif
    top->load_valid = 0;
    top->start = 0;
    top->hold = 0;
    top->debug_addr = 0;
    for (int i = 0; i < 4; ++i) tick();  // the wrapper holds the core in reset for two clocks

    std::vector<int64_t> cycles;
    cycles.reserve(n_samples);
    const int32_t report_every = n_samples >= 20 ? n_samples / 20 : 1;
    std::vector<int64_t> state(state_words + outputs);
    int32_t loaded = 0;  // words of sample k (the next to run) already taken
    int32_t boundary = 0;  // per tick: the next tick boundary's number
    auto read_state = [&]() {
        // debug_data shows a word two clocks after its address is set here (the wrapper's
        // register, then the core's): read word a - 1 while setting a.
        for (int32_t a = 0; a <= state_words; ++a) {
            top->debug_addr = a < state_words ? a : 0;  // park at 0 afterwards
            tick();
            if (a >= 1) state[a - 1] = static_cast<int64_t>(top->debug_data);
        }
    };
    int64_t valid_clocks = -1;  // clocks of state_valid in a sample (the first sample's)
    auto present = [&](int32_t k, int32_t w) {
        top->load_payload = static_cast<uint32_t>(inputs[static_cast<size_t>(k) * words + w]) & mask;
        top->load_valid = 1;
    };
    for (int32_t k = 0; k < n_samples; ++k) {
        for (int32_t w = loaded; w < words; ++w) {
            present(k, w);
            if (!top->load_ready) fail("load not ready between samples");
            tick();
        }
        loaded = 0;
        top->load_valid = 0;
        for (int32_t idle = 0; idle < (per_tick ? 0 : k % 3); ++idle) tick();  // a host's pause
        const bool held = !per_tick && k % 4 == 1;
        int32_t hold_for = 1 + k % 3;  // clocks of state_valid before hold is let go
        top->hold = held || per_tick;  // the wrapper passes it a clock later: set from the start
        top->start = 1;
        tick();  // the core takes the last word; the wrapper takes start
        top->start = 0;
        tick();  // the core takes start
        int64_t started = clocks, valid = 0;
        bool released = false;  // per tick: the boundary read, its hold let down a clock
        if (top->state_valid) fail("state_valid in a sample's first clock");
        while (!top->sample_done) {  // outputs are settled after every tick()
            if (!top->running) fail("running low before sample_done");
            if (per_tick && top->state_valid && !released) {
                top->load_valid = 0;
                read_state();
                const int32_t marker = -2;
                std::fwrite(&marker, sizeof(int32_t), 1, out);
                std::fwrite(&boundary, sizeof(int32_t), 1, out);
                std::fwrite(state.data(), sizeof(int64_t), state_words, out);
                ++boundary;
                top->hold = 0;
                tick();  // the wrapper passes hold low: the core sees it in the next clock
                top->hold = 1;
                released = true;
                continue;
            }
            released = false;
            valid += top->state_valid;
            if (held && top->hold && top->state_valid && --hold_for == 0) top->hold = 0;
            // the next sample's words while this one runs, where the core takes them
            const bool streams = top->running && top->load_ready && k + 1 < n_samples;
            if (streams && loaded < words) {
                present(k + 1, loaded);
                ++loaded;
            } else {
                top->load_valid = 0;
            }
            tick();
            if (clocks - started > max_clocks) {
                std::fprintf(stderr, "harness: no sample_done after %lld clocks\n",
                             static_cast<long long>(max_clocks));
                std::exit(3);
            }
        }
        top->load_valid = 0;
        top->hold = 0;
        valid += top->state_valid;
        if (valid == 0) fail("no state_valid in a sample");
        if (valid_clocks < 0) valid_clocks = valid;
        const int64_t extra = valid - valid_clocks;  // clocks held
        if (per_tick ? false : held ? extra <= 0 : extra != 0) {
            fail(held ? "hold did not keep the state valid"
                      : "state_valid for another count of clocks than before");
        }
        tick();  // the clock of sample_done: the last updates land
        cycles.push_back(clocks - started - (per_tick ? 0 : extra));
        // the core's own account of the run: idle again, and this sample counted
        if (top->running) fail("running after sample_done");
        if (top->samples != static_cast<uint32_t>(k + 1)) fail("the samples counter is wrong");
        if (per_tick || (k + 1) % read_every == 0 || k == n_samples - 1) {
            read_state();
#ifdef PULSEGATE_OUTPUTS
            // the readout register, each element sign-extended from payload_width + 1 bits
            const int shift = 64 - (width + 1);
            for (int32_t j = 0; j < outputs; ++j) {
                top->out_sel = j;
                top->eval();
                const int64_t raw = static_cast<int64_t>(static_cast<uint64_t>(top->out_word) << shift);
                state[state_words + j] = raw >> shift;
            }
#endif
            std::fwrite(&k, sizeof(int32_t), 1, out);
            std::fwrite(state.data(), sizeof(int64_t), state.size(), out);
        }
        if ((k + 1) % report_every == 0 || k == n_samples - 1) {
            std::fprintf(stderr, "progress %d %d\n", k + 1, n_samples);
            std::fflush(stderr);
        }
    }
    const int32_t end = -1;
    std::fwrite(&end, sizeof(int32_t), 1, out);
    std::fwrite(cycles.data(), sizeof(int64_t), cycles.size(), out);
    std::fwrite(&clocks, sizeof(int64_t), 1, out);
    std::fclose(out);
    top->final();
    return 0;
}
