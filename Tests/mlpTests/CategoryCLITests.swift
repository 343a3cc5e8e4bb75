import Foundation
import MLPKit
import XCTest

/// A CSV with feature columns of text (`city`, `kind`) and an id: `train` one-hot encodes the text
/// columns, records their categories, and trains bit for bit the model that the same rows one-hot
/// encoded by hand give; `--drop` leaves the id out; `eval`, `predict`, `info` and a resumed run
/// read the categories back from the checkpoint.
final class CategoryCLITests: XCTestCase {
    var folder: URL!
    let cities = ["Oslo", "Bergen", "\"Mo, i Rana\""]  // as written: sorted, Bergen, Mo, i Rana, Oslo
    let kinds = ["flat", "house"]
    let rows = 120
    /// The same rows with the text columns one-hot encoded by hand (Bergen, Mo, i Rana, Oslo; flat, house).
    var encoded = ""

    override func setUpWithError() throws {
        folder = try makeTemporaryFolder(self)
        var generator = SeededGenerator(seed: 5)
        var text = "id,rooms,city,kind,price\n"
        encoded = "rooms,Bergen,Mo,Oslo,flat,house,price\n"
        for row in 0..<rows {
            let (city, kind) = (row % 3, (row / 3) % 2)
            let rooms = Float(1 + row % 5)
            let price = 2 * rooms + Float(city) - Float(kind) + 0.1 * Float(generator.nextNormal())
            text += "r\(row),\(rooms),\(cities[city]),\(kinds[kind]),\(price)\n"
            let sortedCity = [2, 0, 1][city]  // Oslo 2, Bergen 0, Mo 1
            let hot = (0..<3).map { $0 == sortedCity ? "1" : "0" } + (0..<2).map { $0 == kind ? "1" : "0" }
            encoded += "\(rooms),\(hot.joined(separator: ",")),\(price)\n"
        }
        try text.write(to: folder.appendingPathComponent("homes.csv"), atomically: true, encoding: .utf8)
        try encoded.write(to: folder.appendingPathComponent("encoded.csv"), atomically: true, encoding: .utf8)
    }

    func run(_ arguments: [String]) throws -> CommandResult {
        try CommandRunner.run(arguments, in: folder)
    }

    func checkpoint(_ name: String) throws -> Checkpoint {
        try Checkpoint.load(from: folder.appendingPathComponent(name).path)
    }

    func testCategoriesTrainAsTheirOneHotColumns() throws {
        let common = ["--hidden", "12", "--epochs", "4", "--batch-size", "32", "--seed", "7"]
        let train = try run(["train", "--data", "homes.csv", "--target", "price", "--drop", "id", "--out", "m.safetensors"] + common)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("layers 6,12,1; one-hot 'city' (3), 'kind' (2)"), train.standardError)
        XCTAssertFalse(train.standardError.contains("note:"), "the id is dropped: " + train.standardError)
        let byHand = try run(["train", "--data", "encoded.csv", "--target", "price", "--out", "e.safetensors"] + common)
        XCTAssertEqual(byHand.status, 0, byHand.standardError)
        let model = try checkpoint("m.safetensors")
        XCTAssertEqual(model.parameters.map(\.bitPattern), try checkpoint("e.safetensors").parameters.map(\.bitPattern))
        XCTAssertEqual(model.featureNames, ["rooms", "city", "kind"])
        XCTAssertEqual(model.categories, [nil, ["Bergen", "Mo, i Rana", "Oslo"], ["flat", "house"]])

        // eval and predict on the same rows give what the hand-encoded model gives
        let evaluation = try run(["eval", "--model", "m.safetensors", "--data", "homes.csv", "--json"])
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        XCTAssertTrue(evaluation.standardError.contains("note: homes.csv: left out column 'id', not among the model's inputs"))
        XCTAssertEqual(evaluation.standardOutput,
                       try run(["eval", "--model", "e.safetensors", "--data", "encoded.csv", "--json"]).standardOutput)
        try assertSamePredictions(("m.safetensors", "homes.csv"), ("e.safetensors", "encoded.csv"), in: folder)

        // new rows with the columns in another order and one category of each absent
        try "kind,price,city,rooms\nhouse,1,Oslo,3\nhouse,2,Oslo,1\n".write(to: folder.appendingPathComponent("new.csv"),
                                                                             atomically: true, encoding: .utf8)
        try "rooms,Bergen,Mo,Oslo,flat,house\n3,0,0,1,0,1\n1,0,0,1,0,1\n".write(to: folder.appendingPathComponent("new-encoded.csv"),
                                                                                  atomically: true, encoding: .utf8)
        try assertSamePredictions(("m.safetensors", "new.csv"), ("e.safetensors", "new-encoded.csv"), in: folder)

        let info = try run(["info", "--model", "m.safetensors"])
        XCTAssertTrue(info.standardOutput.contains("inputs: rooms, city, kind; city one-hot: Bergen, 'Mo, i Rana', Oslo; kind one-hot: flat, house\n"),
                      info.standardOutput)
        let categories = try XCTUnwrap(try infoObject("m.safetensors", in: folder)["categories"] as? [Any])
        XCTAssertTrue(categories[0] is NSNull)
        XCTAssertEqual(categories[1] as? [String], ["Bergen", "Mo, i Rana", "Oslo"])
    }

    /// Two epochs, then one more from the checkpoint, equal three: the categories come back in their recorded order.
    func testResumeKeepsTheCategories() throws {
        let common = ["--hidden", "8", "--batch-size", "40", "--seed", "3", "--drop", "id"]
        XCTAssertEqual(try run(["train", "--data", "homes.csv", "--target", "price", "--epochs", "3", "--out", "full.safetensors"] + common).status, 0)
        XCTAssertEqual(try run(["train", "--data", "homes.csv", "--target", "price", "--epochs", "2", "--out", "part.safetensors"] + common).status, 0)
        // a file whose first rows hold the categories in another order, and only two cities
        let lines = try String(contentsOf: folder.appendingPathComponent("homes.csv"), encoding: .utf8).split(separator: "\n")
        let resumed = try run(["train", "--init", "part.safetensors", "--data", "homes.csv", "--epochs", "1", "--out", "resumed.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.standardError)
        XCTAssertEqual(try checkpoint("full.safetensors").parameters.map(\.bitPattern),
                       try checkpoint("resumed.safetensors").parameters.map(\.bitPattern))
        try ([lines[0]] + lines.dropFirst().filter { !$0.contains("Bergen") }.reversed()).joined(separator: "\n")
            .write(to: folder.appendingPathComponent("fewer.csv"), atomically: true, encoding: .utf8)
        let more = try run(["train", "--init", "resumed.safetensors", "--data", "fewer.csv", "--steps", "1", "--out", "more.safetensors"])
        XCTAssertEqual(more.status, 0, more.standardError)
        XCTAssertEqual(try checkpoint("more.safetensors").categories, [nil, ["Bergen", "Mo, i Rana", "Oslo"], ["flat", "house"]])
    }

    func testWhatCannotBeEncodedIsOneError() throws {
        // the id: a different value in every row, each an input, with a note that says so
        let train = try run(["train", "--data", "homes.csv", "--target", "price", "--hidden", "4", "--steps", "1", "--out", "m.safetensors"])
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("note: column 'id' holds 120 different values in 120 rows, each an input: an id or "
            + "free text tells the model nothing about new rows (--drop id leaves it out)"), train.standardError)
        XCTAssertEqual(try checkpoint("m.safetensors").layerSizes, [126, 4, 1])
        XCTAssertEqual(try run(["train", "--data", "homes.csv", "--target", "price", "--hidden", "4", "--steps", "1", "--drop", "id",
                                "--out", "m.safetensors"]).status, 0)
        // a city the model does not know
        try "rooms,city,kind\n2,Oslo,flat\n3,Tromsø,house\n".write(to: folder.appendingPathComponent("tromso.csv"), atomically: true, encoding: .utf8)
        try assertCommandFails(["predict", "--model", "m.safetensors", "--data", "tromso.csv", "--out", "p.csv"], in: folder,
                               mentioning: "tromso.csv, line 3, column 2 ('city'): 'Tromsø' is not one of the categories the model knows "
                                   + "for this column ('Bergen', 'Mo, i Rana', 'Oslo')", status: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("p.csv").path))
        // a model that takes no categories reads numbers only
        XCTAssertEqual(try run(["train", "--data", "encoded.csv", "--target", "price", "--hidden", "4", "--steps", "1",
                                "--out", "e.safetensors"]).status, 0)
        try "rooms,Bergen,Mo,Oslo,flat,house\n3,0,0,yes,0,1\n".write(to: folder.appendingPathComponent("bad.csv"), atomically: true, encoding: .utf8)
        try assertCommandFails(["predict", "--model", "e.safetensors", "--data", "bad.csv", "--out", "p.csv"], in: folder,
                               mentioning: "bad.csv, line 2, column 4 ('Oslo'): 'yes' is not a number", status: 1)
        // --drop's own mistakes
        try assertCommandFails(["train", "--data", "homes.csv", "--target", "price", "--drop", "ID", "--out", "d.safetensors"], in: folder,
                               mentioning: "homes.csv has no column named 'ID' (columns: id, rooms, city, kind, price)", status: 1)
        try assertCommandFails(["train", "--data", "homes.csv", "--target", "price", "--drop", "id,,kind", "--out", "d.safetensors"],
                               in: folder, mentioning: "--drop takes column names separated by commas, got '' in 'id,,kind'", status: 64)
        try assertCommandFails(["train", "--data", "homes.csv", "--target", "5", "--no-header", "--drop", "id", "--out", "d.safetensors"],
                               in: folder, mentioning: "--drop takes column numbers from 1 separated by commas, got 'id' in 'id'", status: 64)
        try assertCommandFails(["eval", "--model", "m.safetensors", "--data", "homes.csv", "--drop", "city"], in: folder,
                               mentioning: "homes.csv: 'city' is one of the model's input columns; it cannot be left out", status: 1)
        XCTAssertEqual(try run(["train", "--x", "encoded.csv", "--y", "encoded.csv", "--drop", "id", "--out", "d.safetensors"]).status, 64)
    }

    /// UCI-style data without a header: categories by position, recorded and read back that way.
    func testHeaderlessCategoriesGoByPosition() throws {
        let lines = try String(contentsOf: folder.appendingPathComponent("homes.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        try (lines.joined(separator: "\n") + "\n").write(to: folder.appendingPathComponent("homes.data"), atomically: true, encoding: .utf8)
        let common = ["--hidden", "12", "--epochs", "4", "--batch-size", "32", "--seed", "7"]
        let train = try run(["train", "--data", "homes.data", "--no-header", "--target", "5", "--drop", "1", "--out", "h.safetensors"] + common)
        XCTAssertEqual(train.status, 0, train.standardError)
        XCTAssertTrue(train.standardError.contains("one-hot column 3 (3), column 4 (2)"), train.standardError)
        let model = try checkpoint("h.safetensors")
        XCTAssertNil(model.featureNames)
        XCTAssertEqual(model.categories, [nil, ["Bergen", "Mo, i Rana", "Oslo"], ["flat", "house"]])
        XCTAssertEqual(try run(["train", "--data", "encoded.csv", "--target", "price", "--out", "e.safetensors"] + common).status, 0)
        XCTAssertEqual(model.parameters.map(\.bitPattern), try checkpoint("e.safetensors").parameters.map(\.bitPattern))
        let evaluation = try run(["eval", "--model", "h.safetensors", "--data", "homes.data", "--no-header", "--target", "5", "--drop", "1", "--json"])
        XCTAssertEqual(evaluation.status, 0, evaluation.standardError)
        XCTAssertEqual(evaluation.standardOutput,
                       try run(["eval", "--model", "e.safetensors", "--data", "encoded.csv", "--json"]).standardOutput)
        XCTAssertTrue(try run(["info", "--model", "h.safetensors"]).standardOutput
            .contains("inputs: 6 from 3 columns, by position; feature column 2 one-hot: Bergen, 'Mo, i Rana', Oslo; feature column 3 one-hot: flat, house"))
        // forgetting --drop leaves one feature column too many
        try assertCommandFails(["eval", "--model", "h.safetensors", "--data", "homes.data", "--no-header", "--target", "5"], in: folder,
                               mentioning: "homes.data has 4 feature columns but the model takes 3, by position", status: 1)
    }
}
