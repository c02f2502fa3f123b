// Native Verilator harness for the virtual board: the board system (core, host link, UART,
// sample store) behind a pseudo-terminal. boards/virtual_board.py opens the pty, builds this and
// runs it with the pty's master side as an inherited file descriptor.
//
// Bytes the host writes to the pty become UART frames on the system's rx pin (a start bit,
// eight data bits LSB first, a stop bit, each `divisor` clocks: the receiver in the RTL sees
// real bit timing); the tx pin is sampled in the middle of every bit and each byte it carries
// goes back to the pty. A pty has no baud rate: the host's setting has no effect here, the
// virtual board's clock and divisor set the line's speed in simulated time.
//
// When nothing happens (no byte pending or on the line either way, no run active, and the
// link's idle timer long expired) the harness waits on the pty instead of clocking, so an
// idle virtual board costs no CPU. SIGINT or SIGTERM end it; it then prints one line of
// statistics (simulated clocks, clocks/s while clocking, bytes each way) on stdout.
//
// Usage: board_harness FD DIVISOR IDLE_CLOCKS
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "Vpulsegate_board.h"
#include "verilated.h"

static volatile std::sig_atomic_t stop_requested = 0;

static void on_signal(int) { stop_requested = 1; }

static void fail(const char* what) {
    std::fprintf(stderr, "board harness: %s\n", what);
    std::exit(2);
}

int main(int argc, char** argv) {
    if (argc != 4) fail("usage: board_harness FD DIVISOR IDLE_CLOCKS");
    const int fd = std::atoi(argv[1]);
    const int64_t divisor = std::atoll(argv[2]);
    const int64_t idle_clocks = std::atoll(argv[3]);
    if (fd < 0 || divisor < 2 || idle_clocks < 1) fail("bad arguments");
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) fail("cannot use the pty");
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vpulsegate_board>(context.get());
    int64_t clocks = 0, bytes_in = 0, bytes_out = 0, dropped = 0, framing = 0;
    std::deque<uint8_t> inbox;  // host -> board, not yet on the line

    // rx driver (host -> board): the frame being sent, LSB first
    uint32_t rx_frame = 0;
    int rx_bits = 0;  // bits of the frame still to send (0: line idle)
    int64_t rx_count = 0;
    // tx decoder (board -> host)
    int tx_bits = -1;  // -1: waiting for a start bit; else data bits taken so far
    int64_t tx_count = 0;
    uint8_t tx_byte = 0;
    int64_t quiet = 0;  // clocks with nothing happening
    double waited = 0;  // seconds spent waiting on the pty

    auto read_pty = [&]() {
        uint8_t buffer[4096];
        ssize_t got = read(fd, buffer, sizeof buffer);
        for (ssize_t k = 0; k < got; ++k) inbox.push_back(buffer[k]);
        if (got > 0) bytes_in += got;
    };
    auto send_byte = [&](uint8_t value) {
        // nobody reading (a full pty buffer): dropped, as a UART with no listener
        if (write(fd, &value, 1) == 1)
            ++bytes_out;
        else
            ++dropped;
    };

    top->rx = 1;
    top->clk = 0;
    top->eval();
    const auto started = std::chrono::steady_clock::now();
    while (!stop_requested) {
        if (rx_bits == 0) {
            if (inbox.empty() && (clocks & 63) == 0) read_pty();
            if (!inbox.empty()) {
                rx_frame = (1u << 9) | (static_cast<uint32_t>(inbox.front()) << 1);
                inbox.pop_front();
                rx_bits = 10;
                rx_count = divisor;
            }
        }
        top->rx = rx_bits ? (rx_frame & 1u) : 1u;
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        ++clocks;
        if (rx_bits && --rx_count == 0) {
            rx_frame >>= 1;
            rx_count = divisor;
            --rx_bits;
        }
        if (tx_bits < 0) {
            if (!top->tx) {  // a start bit: sample bit 0 in its middle
                tx_bits = 0;
                tx_count = divisor + divisor / 2;
                tx_byte = 0;
            }
        } else if (--tx_count == 0) {
            if (tx_bits < 8) {
                tx_byte |= static_cast<uint8_t>((top->tx & 1u) << tx_bits);
                ++tx_bits;
                tx_count = divisor;
            } else {  // the middle of the stop bit
                if (top->tx)
                    send_byte(tx_byte);
                else
                    ++framing;
                tx_bits = -1;
            }
        }
        const bool running = (top->leds >> 2) & 1u;
        if (rx_bits || !inbox.empty() || tx_bits >= 0 || !top->tx || running)
            quiet = 0;
        else if (++quiet >= idle_clocks) {
            pollfd waiting{fd, POLLIN, 0};
            const auto before = std::chrono::steady_clock::now();
            poll(&waiting, 1, 2);  // wake for a byte, or every 2 ms
            waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - before)
                          .count();
            read_pty();
            quiet = idle_clocks - 64;  // a few clocks between two waits
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double clocking = seconds - waited;
    std::printf(
        "virtual board: %lld clocks in %.1f s, %.1f s of them clocking (%.0f clocks/s), "
        "%lld bytes in, %lld out (%lld dropped, %lld framing errors)\n",
        static_cast<long long>(clocks), seconds, clocking,
        clocking > 0 ? clocks / clocking : 0.0,
        static_cast<long long>(bytes_in), static_cast<long long>(bytes_out),
        static_cast<long long>(dropped), static_cast<long long>(framing));
    std::fflush(stdout);
    top->final();
    return 0;
}
